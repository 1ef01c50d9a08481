"""Tables from a benchmark report (the dict of `BenchReport.to_dict()`), as text or markdown.

The layout follows trtexec's performance summary: throughput first, then mean, median, p90, p95,
p99, min and max latency, per frame and per batch, then the per-stage split (host-to-device,
compute, device-to-host) where the backend measured it, then the warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from echogen_trt.bench.env import describe_env

STAT_KEYS = ("mean", "median", "p90", "p95", "p99", "min", "max")
STAGES = ("h2d", "compute", "d2h")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False) -> str:
    """Aligned text table (numbers right-aligned) or a GitHub markdown table."""
    cells = [[_fmt(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]
    if markdown:
        rule = ["---:" if num else "---" for num in numeric]
        lines = [headers, rule, *cells]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _ok(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r.get("status") == "ok"]


def _key(r: dict[str, Any]) -> list[Any]:
    return [r["model_name"], r["backend"], r["precision"], r["device"], r["batch"], r["mode"]]


def frame_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per configuration: throughput, per-frame latency stats, CV, GFLOP/s, % of the
    GEMM ceiling, % of the physical peak (wall clock), % of the peak per CPU-second used."""
    rows = []
    for r in _ok(report):
        lat = r["latency_frame_ms"]
        frac, peak, cpu = (
            r.get("ceiling_fraction"),
            r.get("peak_fraction"),
            r.get("peak_fraction_cpu"),
        )
        rows.append(
            [
                *_key(r),
                r["throughput_fps"],
                *(lat[k] for k in STAT_KEYS),
                round(lat["cv_pct"], 1),
                r.get("achieved_gflops"),
                round(100 * frac, 1) if frac is not None else None,
                round(100 * peak, 1) if peak is not None else None,
                round(100 * cpu, 1) if cpu is not None else None,
            ]
        )
    return rows


def batch_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [[*_key(r), *(r["latency_batch_ms"][k] for k in STAT_KEYS)] for r in _ok(report)]


def stage_rows(report: dict[str, Any]) -> list[list[Any]]:
    """Median ms per batch of each stage, for results whose backend reported stages."""
    rows = []
    for r in _ok(report):
        stages = r.get("stages_ms") or {}
        if stages:
            rows.append([*_key(r), *(stages.get(s, {}).get("median") for s in STAGES)])
    return rows


KEY_HEADERS = ["model", "backend", "prec", "device", "batch", "mode"]


def format_report(report: dict[str, Any], markdown: bool = False, env: bool = True) -> str:
    """The whole report: environment (unless env=False), method, the tables, ceilings,
    problems and warnings."""
    cfg = report["config"]
    rule = cfg["stop_rule"]
    warm = cfg["warmup"]
    env_lines = describe_env(report["env"]) if env else []
    parts = [
        "\n".join(("- " if markdown else "") + line for line in env_lines),
        f"Warm-up: >= {warm['iterations']} calls and >= {warm['seconds']} s. Timing: >= "
        f"{rule['min_iterations']} calls and >= {rule['min_seconds']} s per configuration"
        + (f", at most {rule['max_iterations']} calls" if rule.get("max_iterations") else "")
        + ". Percentiles: nearest rank (numpy 'inverted_cdf', as trtexec). Throughput = frames "
        "/ wall time of the timed loop. compute = infer() on a preprocessed batch; e2e = uint8 "
        "masks -> preprocessing -> infer -> postprocessing -> uint8 frames.",
        f"PyTorch baseline: {cfg.get('baseline')}",
    ]
    headers = [
        *KEY_HEADERS,
        "frames/s",
        *STAT_KEYS,
        "CV%",
        "GFLOP/s",
        "%ceiling",
        "%peak",
        "%peak/cpu-s",
    ]
    parts.append(
        "Throughput and latency per frame (ms)\n\n" + table(headers, frame_rows(report), markdown)
    )
    parts.append(
        "Latency per batch (ms)\n\n"
        + table([*KEY_HEADERS, *STAT_KEYS], batch_rows(report), markdown)
    )
    stages = stage_rows(report)
    if stages:
        parts.append(
            "Stages per batch (median ms)\n\n" + table([*KEY_HEADERS, *STAGES], stages, markdown)
        )
    parts.extend(_tail(report, markdown))
    return "\n\n".join(p for p in parts if p) + "\n"


def peak_lines(report: dict[str, Any], bullet: str) -> str:
    """One line per peak kernel: measured G ops/s, clock, and the fraction of the theoretical
    figure the CPU's flags give (%peak in the table is against the best kernel per precision)."""
    lines = []
    for p in report["peaks"]:
        theory = (
            f" = {100 * p['fraction']:.0f}% of {p['theoretical_gops']:.0f} theoretical "
            f"({p['per_cycle_core']:g} per cycle and core; {p['basis']})"
            if p.get("theoretical_gops")
            else f" ({p['basis']})"
        )
        lines.append(
            f"{bullet}{p['precision']} {p['instruction']}: {p['gops']:.0f} G ops/s on "
            f"{p['threads']} core(s) at {p['clock_ghz']:.2f} GHz{theory}"
        )
    return "\n".join(lines)


def _tail(report: dict[str, Any], markdown: bool) -> list[str]:
    bullet = "- " if markdown else "* "
    out = []
    if report["ceilings"]:
        lines = [
            f"{bullet}{c['device']} {c['precision']}: {c['gflops']:.1f} GFLOP/s "
            f"({c['library']}, {c['n']}^3 GEMM; {c['note']})"
            for c in report["ceilings"]
        ]
        out.append("Ceilings (best GEMM repetition)\n\n" + "\n".join(lines))
    if report.get("peaks"):
        out.append("Physical peaks (per core-second, all cores)\n\n" + peak_lines(report, bullet))
    problems = [r for r in report["results"] if r.get("status") != "ok"]
    if problems:
        lines = [
            f"{bullet}{r['model_name']} {r['backend']}"
            + (f" batch {r['batch']}" if "batch" in r else "")
            + (f" {r['mode']}" if "mode" in r else "")
            + f": {r['status']}: {r['reason']}"
            for r in problems
        ]
        out.append("Skipped or failed\n\n" + "\n".join(lines))
    if report["warnings"]:
        out.append("Warnings\n\n" + "\n".join(bullet + w for w in report["warnings"]))
    return out
