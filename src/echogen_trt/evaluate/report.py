"""Tables and the markdown report of an evaluation: numbers beside the published anchors, and a
picture of a few test masks with their generated and real frames and the segmenter's reading."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from echogen_trt.artifacts.labels import PALETTE
from echogen_trt.errors import DataError
from echogen_trt.fileio import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from echogen_trt.evaluate.protocol import EvalResult

log = logging.getLogger(__name__)

STRUCTURE_NAMES = {"lv": "LV", "myo": "MYO", "la": "LA", "epi": "LV epi (1+2)"}
ROWS = {
    "ceiling": "real-trained U-Net on real test frames (ceiling)",
    "consistency": "real-trained U-Net on generated frames (consistency)",
    "synthetic_only": "U-Net trained on generated frames only, on real test frames",
}
# Published CAMUS figures (Dice on real test patients) the README explains.
ANCHORS: list[tuple[str, dict[str, Any]]] = [
    (
        "Stojanovski et al. 2023, synthetic-only (diffusion)",
        {"lv": 0.886, "epi": 0.919, "la": 0.852},
    ),
    ("Gilbert et al. 2021, synthetic-only (CycleGAN)", {"lv": 0.81, "epi": 0.89, "la": 0.75}),
    (
        "real-data ceiling (CAMUS U-Nets)",
        {"lv": "0.93-0.94", "myo": "0.87-0.89", "la": "0.89-0.91"},
    ),
]
EXAMPLES_PNG = "examples.png"
REPORT_FILES = ("evaluation.json", EXAMPLES_PNG, "report.md")  # what write_report writes


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(summary: dict[str, Any]) -> str:
    """Strict JSON: non-finite numbers (the PSNR of a perfect match) become null."""
    return json.dumps(_finite(summary), indent=2)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.3f}"


def dice_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the Dice table: one row per protocol, one column per structure."""
    dice = summary["dice"]
    names = list(dice["ceiling"])
    header = ["Dice", *(STRUCTURE_NAMES[n] for n in names)]
    rows = [[ROWS[k], *(_cell(v.get(n)) for n in names)] for k, v in dice.items()]
    return header, rows


def format_table(summary: dict[str, Any]) -> str:
    """The plain-text summary `echogen-trt evaluate` prints."""
    header, rows = dice_rows(summary)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    p, k, t = summary["paired"], summary["kid"], summary["seconds"]
    steps = ", ".join(f"{name} {sec:.1f} s" for name, sec in t.items() if name != "total")
    lines += [
        f"paired in the fan ({summary['n_test']} {summary['split']} frames): L1 {p['l1']:.4f}, "
        f"PSNR {p['psnr']:.2f} dB, SSIM {p['ssim']:.3f}; saturated background "
        f"{100 * p['outside_fan_saturation']:.2f} %",
        f"KID ({k['features']}): {k['mean']:.4f} +- {k['std']:.4f} "
        f"({k['subsets']} subsets of {k['subset_size']})",
        f"took {t['total']:.1f} s ({steps})",
    ]
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def markdown(summary: dict[str, Any]) -> str:
    """The report: what was judged, the Dice table, paired metrics, KID, anchors, the picture."""
    header, rows = dice_rows(summary)
    names = list(summary["dice"]["ceiling"])
    anchor_rows = [[name, *(_cell(v.get(n)) for n in names)] for name, v in ANCHORS]
    p, k = summary["paired"], summary["kid"]
    model = summary.get("model", {})
    seg = summary["segmenter"]
    saturated = f"{100 * p['outside_fan_saturation']:.2f} %"
    parts = [
        "# Evaluation",
        f"Model `{model.get('path', '?')}` ({model.get('backend', '?')}, experiment "
        f"{model.get('experiment', '?')}) on `{summary['data']}`: {summary['n_test']} "
        f"{summary['split']} frames, segmenters trained on {summary['n_train']} training frames, "
        f"at {summary['size'][0]}x{summary['size'][1]}.",
        "## Segmentation (Dice against the conditioning masks)",
        _md_table(header, rows),
        f"Judge: U-Net of {seg['params']:,} parameters ({seg['cache']}).",
        "Published anchors on real CAMUS (256x256 and larger, not comparable with phantoms):",
        _md_table(["Source", *header[1:]], anchor_rows),
        "## Paired metrics inside the fan",
        _md_table(
            ["L1", "PSNR (dB)", "SSIM", "saturated background"],
            [[f"{p['l1']:.4f}", f"{p['psnr']:.2f}", f"{p['ssim']:.3f}", saturated]],
        ),
        "SSIM of good echo generators is only about 0.3-0.5: speckle is not reproducible pixel "
        "for pixel. Any saturated background is an artefact (real frames are black there).",
        "## Distribution distance",
        f"KID in the judge's encoder features ({k['features']}): **{k['mean']:.4f} +- "
        f"{k['std']:.4f}** ({k['subsets']} subsets of {k['subset_size']} frames; 0 = "
        "indistinguishable).",
        "## Examples",
        "Mask | generated | real | judge on generated | judge on real",
        f"![examples]({EXAMPLES_PNG})",
        f"Took {summary['seconds']['total']:.1f} s.",
    ]
    return "\n\n".join(parts) + "\n"


def overlay(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """BGR uint8: the grey frame with labelled pixels tinted in the palette colour."""
    grey = cv2.cvtColor(np.rint(np.clip(frame, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    tinted = (0.5 * grey + 0.5 * PALETTE[labels]).astype(np.uint8)
    return np.where((labels > 0)[..., None], tinted, grey)


def examples_picture(examples: dict[str, np.ndarray], min_cell: int = 128) -> np.ndarray:
    """One row per example: mask | generated | real | judge on generated | judge on real."""
    rows = []
    for i in range(len(examples["masks"])):
        grey = [examples[k][i] for k in ("fake", "real")]
        cells = [
            PALETTE[examples["masks"][i]],
            *(overlay(g, np.zeros_like(examples["masks"][i])) for g in grey),
            overlay(examples["fake"][i], examples["seg_fake"][i]),
            overlay(examples["real"][i], examples["seg_real"][i]),
        ]
        scale = max(1, int(np.ceil(min_cell / cells[0].shape[0])))
        cells = [
            cv2.resize(c, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for c in cells
        ]
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def write_report(out_dir: Path, result: EvalResult) -> Path:
    """evaluation.json, report.md and examples.png in `out_dir`; returns the report's path."""
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "evaluation.json", json_text(result.summary) + "\n")
    if len(result.examples["masks"]):
        ok, png = cv2.imencode(".png", examples_picture(result.examples))
        if not ok:
            raise DataError(f"report picture {out_dir / EXAMPLES_PNG} | could not be encoded.")
        write_bytes_atomic(out_dir / EXAMPLES_PNG, png.tobytes())
    report = write_text_atomic(out_dir / "report.md", markdown(result.summary))
    log.info("evaluation report written to %s", report)
    return report
