"""`echogen-trt bench`'s options turned into a `BenchConfig`, and its verdict on a report.

The command only parses and prints; what an unset option means and when a run counts as failed
are decided here, where scripts calling `run_benchmark` see the same rules.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from echogen_trt.bench.plan import BenchConfig
from echogen_trt.bench.timing import parse_warmup
from echogen_trt.errors import EchogenError
from echogen_trt.option_values import parse_ints, parse_names, parse_size


def config_from_options(
    *,
    backends: str | None,
    batches: str | None,
    warmup: str | None,
    modes: str | None,
    ceiling_seconds: float | None,
    cv_warn: float | None,
    mask_size: str | None,
    **plain: Any,
) -> BenchConfig:
    """BenchConfig from the command's options; None keeps the library's default."""
    changes: dict[str, Any] = {
        "backends": parse_names(backends),
        "warmup": parse_warmup(warmup),
        "iterations": plain["iterations"],
        "duration_s": plain["duration"],
        "baseline": plain["baseline"],
        "ceiling": plain["ceiling"],
        "threads": plain["threads"],
        "mask_size": parse_size(mask_size, "--mask-size") if mask_size else None,
    }
    optional = {
        "batches": parse_ints(batches, "--batch") if batches else None,
        "modes": parse_names(modes),
        "ceiling_seconds": ceiling_seconds,
        "cv_warn_pct": cv_warn,
        "rounds": plain["rounds"],
    }
    changes.update({k: v for k, v in optional.items() if v is not None})
    return replace(BenchConfig(), **changes)


def require_a_measurement(report: dict[str, Any]) -> None:
    """EchogenError when no configuration of the report could be measured (exit status 1)."""
    if any(r.get("status") == "ok" for r in report["results"]):
        return
    reasons = "; ".join(sorted({str(r.get("reason")) for r in report["results"]}))
    raise EchogenError(
        f"bench | no configuration could be measured ({reasons or 'no backend available'}). "
        "Hint: `echogen-trt doctor --model MODEL` says which backend serves a file."
    )
