"""The model `generate` serves when none is named: the one obvious file in the working folder.

An engine beats the ONNX file it was built from, which beats the checkpoint; a tier whose backend
cannot run here is passed over (and said so in the log), and two candidates in the winning tier
are an error rather than a guess.
"""

from __future__ import annotations

import logging
from pathlib import Path

from echogen_trt.errors import ConfigError
from echogen_trt.runtime.registry import backend_availability, records, resolve_kind

log = logging.getLogger(__name__)

# Where `echogen-trt train` puts runs (runs/<experiment>) and where models are looked for.
RUNS_DIR = "runs"


def find_default_model(cwd: Path) -> Path:
    """The one obvious model in `cwd` or `cwd/runs/*/`; ConfigError listing what was found."""
    runs = cwd / RUNS_DIR
    folders = [cwd, *sorted(p for p in runs.glob("*") if p.is_dir())] if runs.is_dir() else [cwd]
    seen: list[Path] = []
    for patterns in model_tiers():
        found = sorted({f for d in folders for pat in patterns for f in d.glob(pat) if f.is_file()})
        seen += found
        if not found:
            continue
        kind = resolve_kind(found[0])
        ok, reason = backend_availability(kind)
        if not ok:
            log.info("not using %s: %s", ", ".join(map(str, found)), reason)
            continue
        if len(found) == 1:
            return found[0]
        shown = ", ".join(show_relative(f, cwd) for f in found)
        raise ConfigError(
            f"--model | {len(found)} candidates: {shown}. "
            "Expected exactly one. Hint: pass --model PATH."
        )
    unusable = ", ".join(show_relative(f, cwd) for f in seen)
    listed = f" (found but unusable here: {unusable})" if seen else ""
    raise ConfigError(
        f"--model | none found in {cwd} or {RUNS_DIR}/*/{listed}. Expected one of "
        f"{', '.join(p for tier in model_tiers() for p in tier)}. "
        "Hint: pass --model PATH, or export one with `echogen-trt export`."
    )


def model_tiers() -> list[tuple[str, ...]]:
    """Glob patterns, most preferred first: an engine beats its ONNX source, which beats the
    checkpoint (the records' `default_files`, in the table's order)."""
    return [rec.default_files for rec in records() if rec.default_files]


def show_relative(path: Path, cwd: Path) -> str:
    """`path` relative to `cwd` where it lies inside, else as given."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)
