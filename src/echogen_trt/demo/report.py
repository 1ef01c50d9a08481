"""The demo's report: metrics on the held-out patients, a contact sheet, the latency table.

Metrics compare the frames `generate` wrote to disk (what a user gets) with the real phantom
frames at the model's resolution (`metrics.frame_metrics`: L1, PSNR and SSIM inside the fan, white
pixels outside it). The same metrics for the untrained generator (the training run's initial
weights) show what training bought.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from echogen_trt.artifacts.labels import PALETTE
from echogen_trt.demo.context import FRAMES, PHASE, VIEW, Context, held_out, test_pairs
from echogen_trt.errors import DataError
from echogen_trt.fileio import write_text_atomic
from echogen_trt.metrics import frame_metrics

log = logging.getLogger(__name__)

SHEET = "contact_sheet.png"
CELL = 256  # display size of one contact-sheet cell
HEADER = 28


def generated_frames(ctx: Context, patients: list[str]) -> np.ndarray:
    """The frames `generate` wrote, in patient order, as float32 (N, H, W) in [0, 1]."""
    frames = []
    for patient in patients:
        path = ctx.out / FRAMES / f"{patient}_{VIEW}_{PHASE}.png"
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DataError(f"demo frame {path} | missing or unreadable. Hint: run with --fresh.")
        frames.append(image.astype(np.float32) / 255.0)
    return np.stack(frames)


def untrained_frames(ctx: Context, masks: np.ndarray) -> np.ndarray:
    """The training run's initial generator (same seed and output bias, no step taken) on the
    held-out masks."""
    import torch

    from echogen_trt.train.checkpoint import load_checkpoint
    from echogen_trt.train.gan import build_gan

    tcfg = replace(ctx.train_config(), device="cpu")
    ckpt = ctx.path("train", "checkpoint")
    out_bias = 0.0
    if ckpt is not None and ckpt.is_file():
        out_bias = float(load_checkpoint(ckpt)["model_config"].get("out_bias", 0.0))
    generator = build_gan(tcfg, torch.device("cpu"), out_bias).G.eval()
    with torch.no_grad():
        out = generator(torch.from_numpy(masks.astype(np.float32))[:, None])
    return np.asarray(out[:, 0].numpy(), dtype=np.float32)


def evaluate(ctx: Context) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """({"trained": metrics, "untrained": metrics}, arrays for the contact sheet)."""
    pairs = test_pairs(ctx)
    fakes = generated_frames(ctx, list(pairs.patients))
    metrics = {"trained": frame_metrics(fakes, pairs.images)}
    arrays = {"masks": pairs.masks, "generated": fakes, "real": pairs.images}
    try:
        arrays["untrained"] = untrained_frames(ctx, pairs.masks)
        metrics["untrained"] = frame_metrics(arrays["untrained"], pairs.images)
    except ImportError:  # torch-free install: the baseline is optional
        log.info("torch is not installed: no untrained baseline")
    arrays["patients"] = np.array(pairs.patients)
    return metrics, arrays


def _cell(image: np.ndarray, text: str = "") -> np.ndarray:
    """A CELL x CELL BGR tile (nearest-neighbour upscaling: what the model made, unsmoothed)."""
    if image.ndim == 2 and image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    tile = cv2.resize(image, (CELL, CELL), interpolation=cv2.INTER_NEAREST)
    if tile.ndim == 2:
        tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
    if text:
        cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)  # fmt: skip
    return tile


def contact_sheet(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """One row per held-out patient: mask | generated | real (| untrained), titled columns."""
    columns = [("mask", "masks"), ("generated", "generated"), ("real", "real")]
    if "untrained" in arrays:
        columns.append(("untrained (flat grey)", "untrained"))
    rows = []
    for i, patient in enumerate(arrays["patients"]):
        colour = PALETTE[arrays["masks"][i]]
        tiles = [_cell(colour, str(patient))]
        tiles += [_cell(arrays[key][i]) for _, key in columns[1:]]
        rows.append(np.hstack(tiles))
    header = np.zeros((HEADER, CELL * len(columns), 3), np.uint8)
    for j, (title, _) in enumerate(columns):
        cv2.putText(header, title, (j * CELL + 8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    if not cv2.imwrite(str(path), np.vstack([header, *rows])):
        raise DataError(f"demo contact sheet {path} | could not be written.")
    return path


# -- the report files -------------------------------------------------------------------------
def latency_rows(bench: dict[str, Any]) -> list[list[Any]]:
    """model, backend, precision, batch, mode, frames/s, median and p95 ms per frame."""
    rows = []
    for r in bench.get("results", []):
        if r.get("status") != "ok":
            continue
        lat = r["latency_frame_ms"]
        rows.append([r["model_name"], r["backend"], r["precision"], r["batch"], r["mode"],
                     round(r["throughput_fps"], 1), round(lat["median"], 2),
                     round(lat["p95"], 2)])  # fmt: skip
    return rows


def _metric_table(metrics: dict[str, dict[str, float]]) -> str:
    from echogen_trt.bench.report import table

    rows = [[name, f"{m['l1']:.4f}", f"{m['psnr']:.2f}", f"{m['ssim']:.3f}",
             f"{100 * m['sat_out']:.3f} %" if "sat_out" in m else "-"]
            for name, m in metrics.items()]  # fmt: skip
    headers = ["model", "L1", "PSNR dB", "SSIM", "white outside fan"]
    return table(headers, rows, markdown=True)


def _training_line(t: dict[str, Any]) -> str:
    if not t:
        return "No training information recorded."
    size = t["image_size"]
    speed = f"{t['it_per_s']} it/s"
    if t.get("budget_s") is not None:
        load = t.get("load") or []
        speed += (
            f"; stopped by the {'clock' if t.get('stopped_by') == 'clock' else 'iteration count'}"
            f" after {t.get('step_seconds', t['seconds']):.0f} s of a {t['budget_s']:.0f} s "
            f"budget, {t.get('cpu_seconds', 0):.0f} CPU-s"
            + (f", load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}" if load else "")
        )
    phase = {"both": "ED and ES", None: "ED"}.get(t.get("phase"), t.get("phase"))
    return (
        f"Generator width {t['width']} at {size}x{size} ({t['generator_params']:,} parameters), "
        f"batch {t['batch_size']}, **{t['iters']} iterations** ({t['iters_from']}; {speed}) on "
        f"{t['device']}, {t['n_train']} training frames ({phase}), {t['seconds']:.0f} s."
        + (f" **Warning: {t['few_iterations']}.**" if t.get("few_iterations") else "")
    )


def _evaluation_lines(ev: dict[str, Any]) -> list[str]:
    """The `evaluate` step's Dice table and KID (details in evaluate/report.md)."""
    if not ev:
        return []
    from echogen_trt.bench.report import table
    from echogen_trt.evaluate.report import dice_rows, distance_rows, kid_line, phase_rows

    header, rows = dice_rows(ev)
    frames = ", ".join(f"{n} {ph}" for ph, n in ev.get("frames", {}).items()) or "ED and ES"
    lines = [
        "## Segmentation consistency", "",
        f"U-Nets trained on the real training frames read the generated frames of the "
        f"{ev['n_test']} {ev['split']} frames ({frames}); Dice against the masks they were "
        "generated from, beside the same U-Nets on the real frames (the ceiling) and on a grey "
        "sector without anatomy (the floor). Synthetic-only: U-Nets trained only on generated "
        "frames, tested on the real ones. +- : standard error over frames (consistency), spread "
        "over judge seeds (ceiling, synthetic-only).", "",
        table(header, rows, markdown=True), "",
    ]  # fmt: skip
    if ev.get("dice_by_phase"):
        lines += ["Per phase (generated / real):", "",
                  table(*phase_rows(ev), markdown=True), ""]  # fmt: skip
    if ev.get("distance"):
        lines += ["Contour distances:", "", table(*distance_rows(ev), markdown=True), ""]
    lines += [
        f"KID in the U-Net encoder's features: {kid_line(ev['kid'])} (0 = indistinguishable). "
        "Details and published anchors: [evaluate/report.md](evaluate/report.md).", "",
    ]  # fmt: skip
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """report.md from the report.json document."""
    from echogen_trt.bench.report import table

    t = doc["training"]
    lines = [
        "# echogen-trt demo", "",
        f"Made by `echogen-trt demo` in {doc['seconds']:.0f} s. Everything below was computed "
        "on phantom (synthetic) data; nothing here is a clinical result.", "",
        "## Steps", "",
        table(["step", "status", "seconds", "what"],
              [[s["name"], s["status"], round(s["seconds"], 1), s["detail"]]
               for s in doc["steps"]], markdown=True),
        "", "## Training", "",
        _training_line(t), "",
        f"## Held-out patients ({len(doc['held_out'])}: {', '.join(doc['held_out'])})", "",
        "L1 and PSNR on [0, 1] intensities and SSIM, each inside the ultrasound fan, of the "
        "generated frames against the real phantom frames. Paired SSIM stays low even for good "
        "generators: speckle is not reproducible pixel for pixel. \"White outside fan\" is the "
        "share of background pixels (black in every real frame) that the model paints above "
        "0.9: the saturated apex blob of the reference recipe (target: below 0.1 %).", "",
        _metric_table(doc["metrics"]), "",
        f"![contact sheet]({SHEET})", "",
        "The untrained column is the training run's initial generator: a near-uniform dark grey "
        "(its output bias starts at the mean training intensity), the floor the trained model's "
        "figures are measured against.", "",
        *_evaluation_lines(doc.get("evaluation") or {}),
        "## Latency", "",
    ]  # fmt: skip
    rows = doc["latency"]
    headers = ["model", "backend", "prec", "batch", "mode", "frames/s", "median ms", "p95 ms"]
    lines += [table(headers, rows, markdown=True) if rows else "No benchmark results.", ""]
    lines += ["Full tables: [bench/bench.md](bench/bench.md).", "", "## Skipped", ""]
    skipped = [s for s in doc["steps"] if s["status"] in ("skipped", "failed")]
    lines += [f"- {s['name']} ({s['status']}): {s['detail']}" for s in skipped] or ["Nothing."]
    lines += ["", "## Environment", "", *(f"- {line}" for line in doc["environment"]), ""]
    return "\n".join(lines)


def environment_lines() -> list[str]:
    """Host, CPU, GPU and library versions (the benchmark's environment block)."""
    try:
        from echogen_trt.bench.env import collect_env, describe_env

        return describe_env(collect_env())
    except Exception as err:  # a broken probe must not cost the user the report
        log.warning("environment probe failed: %s", err)
        return [f"Python {platform.python_version()} on {platform.platform()}"]


def write_report(ctx: Context, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """report.md, report.json and the contact sheet; returns the path of report.md."""
    bench_json = ctx.path("bench", "json")
    bench = json.loads(bench_json.read_text()) if bench_json and bench_json.is_file() else {}
    doc["latency"] = latency_rows(bench)
    doc["evaluation"] = ctx.infos.get("evaluate") or {}
    doc["held_out"] = held_out(ctx)
    doc["environment"] = environment_lines()
    contact_sheet(arrays, ctx.out / SHEET)
    doc["contact_sheet"] = SHEET
    write_text_atomic(ctx.out / "report.json", json.dumps(doc, indent=2, default=str) + "\n")
    md = ctx.out / "report.md"
    write_text_atomic(md, render_markdown(doc))
    return md
