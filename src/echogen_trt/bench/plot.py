"""Latency by backend and batch size as a PNG (matplotlib, an optional dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from echogen_trt.errors import BackendUnavailable

PLOT_HINT = "pip install matplotlib (or `pip install 'echogen-trt[plot]'`)"


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise BackendUnavailable(
            f"--plot | matplotlib is not installed ({err}). Hint: {PLOT_HINT}, or drop --plot."
        ) from err
    return plt


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """One panel per mode: median ms per frame against batch size, a line per model/backend,
    with error bars from min to p99. Returns the written path."""
    plt = _pyplot()
    ok = [r for r in report["results"] if r.get("status") == "ok"]
    modes = sorted({r["mode"] for r in ok}) or ["compute"]
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.5), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        series: dict[str, list[dict[str, Any]]] = {}
        for r in ok:
            if r["mode"] == mode:
                label = f"{r['model_name']} {r['backend']} {r['precision']}"
                series.setdefault(label, []).append(r)
        for label, rows in sorted(series.items()):
            rows.sort(key=lambda r: r["batch"])
            med = [r["latency_frame_ms"]["median"] for r in rows]
            low = [m - r["latency_frame_ms"]["min"] for m, r in zip(med, rows, strict=True)]
            high = [r["latency_frame_ms"]["p99"] - m for m, r in zip(med, rows, strict=True)]
            yerr = [[max(0.0, v) for v in low], [max(0.0, v) for v in high]]
            ax.errorbar(
                [r["batch"] for r in rows], med, yerr=yerr, marker="o", capsize=3, label=label
            )
        batches = sorted({r["batch"] for r in ok})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel("ms per frame (median; bars: min to p99)")
        ax.set_title(f"{mode} latency per frame")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
