"""Tables and the markdown report of an evaluation: every score beside its floor, ceiling and noise
and the published anchors, and a picture of a few test masks with their generated and real frames
and the segmenter's reading."""

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
    "floor": "real-trained U-Net on a grey sector, no anatomy (floor)",
    "normalised": "consistency normalised: (score - floor) / (ceiling - floor)",
    "synthetic_only": "U-Net trained on generated frames only, on real test frames",
}
# the noise shown beside each row: standard error over frames, or the spread over judge seeds
NOISE = {"consistency": "se", "ceiling": "judge_std", "synthetic_only": "judge_std"}
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


def _noisy(value: Any, noise: Any) -> str:
    return _cell(value) if value is None or noise is None else f"{value:.3f} +- {noise:.3f}"


def dice_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the Dice table: one row per protocol, one column per structure; the
    consistency row carries its standard error over frames, ceiling and synthetic-only rows the
    spread over judge seeds (summaries without noise show bare numbers)."""
    dice, noise = summary["dice"], summary.get("dice_noise", {})
    names = list(dice["ceiling"])
    header = ["Dice", *(STRUCTURE_NAMES[n] for n in names)]
    rows = []
    for k, v in dice.items():
        spread = noise.get(NOISE.get(k, ""), {}).get(k, {})
        rows.append([ROWS[k], *(_noisy(v.get(n), spread.get(n)) for n in names)])
    return header, rows


def kid_line(k: dict[str, Any]) -> str:
    """KID with its real-vs-real null, or why it cannot be read with this few frames."""
    value = f"{k['mean']:.4f} +- {k['std']:.4f} ({k['subsets']} subsets of {k['subset_size']})"
    if "null_p95" not in k:
        return value
    null = (
        f"real-vs-real null of {k['n_frames']} frames: mean {k['null_mean']:.4f}, p95 "
        f"{k['null_p95']:.4f}"
    )
    if not k.get("enough", True):
        return (
            f"not enough frames ({k['n_frames']}) for KID to separate generators: {value} "
            f"lies among real-vs-real values ({null}); judge by Dice instead"
        )
    return f"{value}; {null}; z {k['z']:.1f}, p {k['p']:.3f}"


def format_table(summary: dict[str, Any]) -> str:
    """The plain-text summary `echogen-trt evaluate` prints."""
    header, rows = dice_rows(summary)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    p, k, t = summary["paired"], summary["kid"], summary["seconds"]
    steps = ", ".join(f"{name} {sec:.1f} s" for name, sec in t.items() if name != "total")
    floor = summary.get("paired_floor")
    lines += [
        f"paired in the sector ({summary['n_test']} {summary['split']} frames): L1 {p['l1']:.4f}, "
        f"PSNR {p['psnr']:.2f} dB, SSIM {p['ssim']:.3f}; saturated background "
        f"{100 * p['outside_fan_saturation']:.2f} %"
        + (
            f" (grey-sector floor: PSNR {floor['psnr']:.2f} dB, SSIM {floor['ssim']:.3f})"
            if floor
            else ""
        ),
        *distance_lines(summary),
        f"KID ({k['features']}): {kid_line(k)}",
        f"took {t['total']:.1f} s ({steps})",
    ]
    return "\n".join(lines)


def distance_lines(summary: dict[str, Any]) -> list[str]:
    """One line per structure: HD95 and MAD (mm) on generated frames, ceiling in brackets."""
    dist = summary.get("distance")
    if not dist:
        return []
    out = []
    for name, d in dist["consistency"].items():
        c = dist["ceiling"][name]
        missing = f", not found in {d['missing']} frames" if d["missing"] else ""
        out.append(
            f"{STRUCTURE_NAMES[name]}: HD95 {_mm(d['hd95_mm'])} (real {_mm(c['hd95_mm'])}), MAD "
            f"{_mm(d['mad_mm'])} (real {_mm(c['mad_mm'])}){missing}"
        )
    return out


def _mm(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} mm"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def phase_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): consistency and ceiling Dice per phase (ED, ES, half-sequence frames)."""
    names = list(summary["dice"]["ceiling"])
    header = ["phase", "frames", *(f"{STRUCTURE_NAMES[n]} gen / real" for n in names)]
    rows = []
    for phase, d in summary.get("dice_by_phase", {}).items():
        cells = [f"{_cell(d['consistency'][n])} / {_cell(d['ceiling'][n])}" for n in names]
        rows.append([phase, str(summary.get("frames", {}).get(phase, "?")), *cells])
    return header, rows


def distance_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): HD95 and MAD in mm per structure, generated vs real frames."""
    header = ["structure", "HD95 generated", "HD95 real", "MAD generated", "MAD real",
              "not found (generated)"]  # fmt: skip
    dist = summary.get("distance") or {"consistency": {}, "ceiling": {}}
    rows = [
        [STRUCTURE_NAMES[n], _mm(d["hd95_mm"]), _mm(dist["ceiling"][n]["hd95_mm"]),
         _mm(d["mad_mm"]), _mm(dist["ceiling"][n]["mad_mm"]), str(d["missing"])]
        for n, d in dist["consistency"].items()
    ]  # fmt: skip
    return header, rows


def markdown(summary: dict[str, Any]) -> str:
    """The report: what was judged, the Dice table with floor/ceiling/noise, per phase, contour
    distances, paired metrics with their floor, KID with its null, anchors, the picture."""
    header, rows = dice_rows(summary)
    names = list(summary["dice"]["ceiling"])
    anchor_rows = [[name, *(_cell(v.get(n)) for n in names)] for name, v in ANCHORS]
    p, k = summary["paired"], summary["kid"]
    floor = summary.get("paired_floor")
    model = summary.get("model", {})
    seg = summary["segmenter"]
    judges = summary.get("judges", [seg])
    frames = ", ".join(f"{n} {ph}" for ph, n in summary.get("frames", {}).items())
    paired_rows = [["generated", f"{p['l1']:.4f}", f"{p['psnr']:.2f}", f"{p['ssim']:.3f}",
                    f"{100 * p['outside_fan_saturation']:.2f} %"]]  # fmt: skip
    if floor:
        paired_rows.append(["grey sector (floor)", f"{floor['l1']:.4f}", f"{floor['psnr']:.2f}",
                            f"{floor['ssim']:.3f}", "-"])  # fmt: skip
    parts = [
        "# Evaluation",
        f"Model `{model.get('path', '?')}` ({model.get('backend', '?')}, experiment "
        f"{model.get('experiment', '?')}) on `{summary['data']}`: {summary['n_test']} "
        f"{summary['split']} frames ({frames or 'ED, ES'}), segmenters trained on "
        f"{summary['n_train']} training frames, at {summary['size'][0]}x{summary['size'][1]}.",
        "## Segmentation (Dice against the conditioning masks)",
        _md_table(header, rows),
        f"Judges: {len(judges)} U-Net(s) of {seg['params']:,} parameters, seeds "
        f"{', '.join(str(j.get('seed', '?')) for j in judges)} ({seg['cache']}); each read the "
        "real frames above the quality gate. +- : standard error over frames (consistency), spread "
        "over judge seeds (ceiling, synthetic-only). The floor is what a frame without anatomy "
        "scores; only the distance above it means anything.",
        "Per phase (consistency / ceiling):",
        _md_table(*phase_rows(summary)),
        "Contour distances (mean over frames where the judge found the structure):",
        _md_table(*distance_rows(summary)),
        "Published anchors on real CAMUS (256x256 and larger, not comparable with phantoms):",
        _md_table(["Source", *header[1:]], anchor_rows),
        "## Paired metrics inside the sector",
        _md_table(["frames", "L1", "PSNR (dB)", "SSIM", "saturated background"], paired_rows),
        "The sector is the fan with its holes (the dark cavities) filled. SSIM of good echo "
        "generators is only about 0.3-0.5: speckle is not reproducible pixel for pixel. Any "
        "saturated background is an artefact (real frames are black there).",
        "## Distribution distance",
        f"KID in the judge's encoder features ({k['features']}): **{kid_line(k)}** (0 = "
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
