"""The issue 24 audit table, recomputed with the protocol it led to.

Controlled degradations of the real test frames of a CAMUS-layout tree (identity, Gaussian blur
sigma 2 and 4, the whole frame shifted 10 px, frames swapped between patients, a grey sector of the
mean training intensity) and a trained model, each judged by `evaluate_generator` with the default
protocol (hole-filled sector, 3 gated judges, floor/ceiling/noise, KID with its real-vs-real null;
the synthetic-only protocol is left out: it needs no ladder). The judges are trained once and
reused from the cache for every row.

Run: `PYTHONPATH=src python benchmarks/fidelity_audit.py --data demo/data --model
demo/models/echogen.onnx [--cache demo/cache]`; writes
benchmarks/results/fidelity-audit-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.bench.env import cpu_info
from echogen_trt.evaluate import ladder
from echogen_trt.evaluate.protocol import EvalConfig, evaluate_generator, load_frames
from echogen_trt.runtime.mask_to_echo import MaskToEcho

RESULTS = Path(__file__).resolve().parent / "results"
STRUCTS = ("lv", "myo", "la")


def lookup(masks: np.ndarray, frames: np.ndarray) -> Any:
    """A masks -> frames function returning `frames[i]` for `masks[i]` (uint8)."""
    table = {m.tobytes(): np.rint(f * 255).astype(np.uint8) for m, f in
             zip(masks, frames, strict=True)}  # fmt: skip
    return lambda batch: np.stack([table[m.tobytes()] for m in batch])


def row(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    d, p, k = summary["dice"], summary["paired"], summary["kid"]
    return {
        "condition": name, "psnr": p["psnr"], "ssim": p["ssim"], "l1": p["l1"],
        "dice": {s: d["consistency"][s] for s in STRUCTS},
        "dice_se": {s: summary["dice_noise"]["se"]["consistency"][s] for s in STRUCTS},
        "normalised": {s: d["normalised"][s] for s in STRUCTS},
        "by_phase": {ph: {s: v["consistency"][s] for s in STRUCTS}
                     for ph, v in summary["dice_by_phase"].items()},
        "hd95_mm": {s: summary["distance"]["consistency"][s]["hd95_mm"] for s in STRUCTS},
        "mad_mm": {s: summary["distance"]["consistency"][s]["mad_mm"] for s in STRUCTS},
        "kid": {key: k[key] for key in ("mean", "std", "null_mean", "null_p95", "z", "p",
                                         "n_frames", "enough")},
        "ceiling": {s: d["ceiling"][s] for s in STRUCTS},
        "floor": {s: d["floor"][s] for s in STRUCTS},
    }  # fmt: skip


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, fmt)


def markdown(doc: dict[str, Any]) -> str:
    r0 = doc["rows"][0]
    lines = [
        f"# Fidelity audit, new protocol ({doc['date']}, {doc['machine']})", "",
        f"Tree `{doc['data']}`, {doc['n_test']} test frames ({doc['frames']}) at "
        f"{doc['size']}x{doc['size']}; {doc['judges']} gated judges; load average "
        f"{doc['load'][0]:.1f} to {doc['load'][1]:.1f}. Ceiling (real frames) LV/MYO/LA "
        f"{_f(r0['ceiling']['lv'])} / {_f(r0['ceiling']['myo'])} / {_f(r0['ceiling']['la'])}, "
        f"floor (grey sector) {_f(r0['floor']['lv'])} / {_f(r0['floor']['myo'])} / "
        f"{_f(r0['floor']['la'])}. Dice +- standard error over frames; PSNR/SSIM inside the "
        "hole-filled sector; KID z against the real-vs-real null of the same size "
        f"(null p95 {r0['kid']['null_p95']:.4f}).", "",
        "| condition | PSNR | SSIM | Dice LV / MYO / LA | normalised LV / MYO / LA | ED / ES LV | "
        "HD95 LV mm | KID | KID z |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in doc["rows"]:
        dice = " / ".join(f"{_f(r['dice'][s])} +- {_f(r['dice_se'][s])}" for s in STRUCTS)
        norm = " / ".join(_f(r["normalised"][s], ".2f") for s in STRUCTS)
        phases = f"{_f(r['by_phase']['ED']['lv'])} / {_f(r['by_phase']['ES']['lv'])}"
        lines.append(
            f"| {r['condition']} | {_f(r['psnr'], '.2f')} | {_f(r['ssim'])} | {dice} | {norm} | "
            f"{phases} | {_f(r['hd95_mm']['lv'], '.2f')} | {r['kid']['mean']:.4f} | "
            f"{_f(r['kid']['z'], '.1f')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--shift", type=int, default=10)
    ap.add_argument("--judges", type=int, default=EvalConfig.judges)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    cfg = EvalConfig(synthetic=False, judges=args.judges)
    size = (args.size, args.size)
    test = load_frames(args.data, "test", cfg, size, progress=False)
    train = load_frames(args.data, "train", cfg, size, progress=False)
    real = test.images
    conditions = {
        "real frames (identity)": real,
        "Gaussian blur sigma 2": ladder.blur(real, 2.0),
        "Gaussian blur sigma 4": ladder.blur(real, 4.0),
        f"whole frame shifted {args.shift} px": ladder.shift(real, args.shift),
        "frames swapped between patients": ladder.swap(real, test.patients),
        "mean grey inside the sector": ladder.grey_sector(real, ladder.sector_level(train.images)),
    }
    loads, rows, t0 = [os.getloadavg()[0]], [], time.perf_counter()
    common: dict[str, Any] = dict(size=size, kept=(1, 2, 3), config=cfg, cache_dir=args.cache)
    for name, frames in conditions.items():
        summary = evaluate_generator(lookup(test.masks, frames), args.data, **common).summary
        rows.append(row(name, summary))
        loads.append(os.getloadavg()[0])
        print(json.dumps(rows[-1]), flush=True)
    with MaskToEcho(args.model) as gen:
        summary = evaluate_generator(gen.generate, args.data, **common).summary
    rows.append(row(f"model {args.model.name}", summary))
    loads.append(os.getloadavg()[0])
    doc = {
        "date": date.today().isoformat(),
        "machine": f"{cpu_info().get('model')}, {os.cpu_count()} CPUs",
        "data": str(args.data), "model": str(args.model), "size": args.size,
        "n_test": len(test.ids), "frames": summary["frames"], "judges": cfg.judges,
        "load": [min(loads), max(loads)], "wall_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }  # fmt: skip
    stem = f"fidelity-audit-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
