"""What raises the demo model's segmentation consistency per CPU-second (issue 24, item 8).

Controlled runs on the demo's data (phantom patients, 4CH, ED and ES frames, width 16 at
128x128): every run trains with the training loop itself (train.loop.train) until a budget of
CPU seconds of this process (time.process_time, torch on one thread) runs out, so a cheaper
iteration buys more iterations; the loop's `max_seconds` reads that clock every iteration. The
configurations are interleaved (seed by seed, the order reversed for the second seed) so that load
drift hits each alike, and each run records its iterations, wall time and the load average.

Score: a segmentation U-Net (evaluate.segment, default settings) trained once on the real training
frames reads the generated frames of the held-out patients (valid + test, ED and ES); Dice per
structure against the masks they came from, with the standard error over frames. The real frames
(ceiling) and a mask-agnostic grey sector (floor) are scored by the same judge.

Run: `PYTHONPATH=src python benchmarks/demo_study.py [--cpu-seconds 60] [--seeds 0,1]
[--configs ref,lr3,skips,resize]`; writes benchmarks/results/demo-study-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echogen_trt.bench.env import cpu_info
from echogen_trt.data.dataset import load_pairs
from echogen_trt.data.synth import synthesize_dataset
from echogen_trt.evaluate.dice import STRUCTURES, dice_per_image
from echogen_trt.evaluate.ladder import grey_sector, sector, sector_level
from echogen_trt.evaluate.segment import SegmenterSettings, predict_labels, train_segmenter
from echogen_trt.metrics import fan_metrics
from echogen_trt.train.checkpoint import load_generator
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.loop import train

RESULTS = Path(__file__).resolve().parent / "results"
STRUCTS = {k: STRUCTURES[k] for k in ("lv", "myo", "la")}
# name -> TrainConfig overrides of the demo's recipe (the reference at width 16, 128x128, both
# phases); the last two leave the reference network and are options, never defaults.
CONFIGS: dict[str, dict[str, Any]] = {
    "ref": {},
    "lr3": {"lr_g": 3.9e-4, "lr_d": 4.5e-4},
    "batch4": {"batch_size": 4},
    "l1x3": {"l1_weight": 300.0},
    "skips": {"skips": True},
    "resize": {"upsample": "resize"},
}


def score(frames: np.ndarray, test: Any, judge: Any, sector_mask: np.ndarray) -> dict[str, Any]:
    """Dice per structure (mean and standard error over frames) and in-sector PSNR."""
    per = dice_per_image(predict_labels(judge, frames), test.masks, STRUCTS)
    dice = {}
    for name, values in per.items():
        v = values[~np.isnan(values)]
        dice[name] = [round(float(v.mean()), 4), round(float(v.std(ddof=1) / np.sqrt(len(v))), 4)]
    psnr = fan_metrics(frames, test.images, mask=sector_mask)["psnr"]
    return {"dice": dice, "psnr": round(psnr, 3) if np.isfinite(psnr) else None}


def generate(ckpt: Path, masks: np.ndarray) -> np.ndarray:
    generator, _ = load_generator(ckpt)
    generator.eval()
    with torch.no_grad():
        x = torch.from_numpy(masks.astype(np.float32))[:, None]
        return generator(x)[:, 0].numpy()


def one_run(
    name: str, seed: int, base: TrainConfig, budget: float, data: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    cfg = replace(base, **CONFIGS[name], seed=seed, max_seconds=budget,
                  out=str(tmp / f"{name}-{seed}"))  # fmt: skip
    load0, wall0 = os.getloadavg(), time.perf_counter()
    summary = train(cfg, train_set=data["train"], valid_set=data["valid"], clock=time.process_time)
    wall = time.perf_counter() - wall0
    frames = generate(Path(summary.last_checkpoint), data["test"].masks)
    result = {
        "config": name, "seed": seed, "iters": summary.step, "cpu_s": summary.cpu_seconds,
        "wall_s": round(wall, 1), "load_before": [round(x, 2) for x in load0],
        "load_after": summary.load, "stopped_by": summary.stopped_by,
        **score(frames, data["test"], data["judge"], data["sector"]),
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    return result


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per config: mean and spread over seeds of Dice, iterations and CPU-s per iteration."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["config"] for r in runs):
        rs = [r for r in runs if r["config"] == name]
        row: dict[str, Any] = {"seeds": len(rs), "options": CONFIGS[name]}
        for s in STRUCTS:
            vals = np.array([r["dice"][s][0] for r in rs])
            row[s] = [round(float(vals.mean()), 4), round(float(vals.std()), 4)]
        row["iters"] = round(float(np.mean([r["iters"] for r in rs])), 1)
        row["cpu_s_per_it"] = round(float(np.mean([r["cpu_s"] / r["iters"] for r in rs])), 3)
        row["psnr"] = round(float(np.mean([r["psnr"] for r in rs])), 2)
        out[name] = row
    return out


def markdown(doc: dict[str, Any]) -> str:
    s, fl, ce = doc["settings"], doc["floor"], doc["ceiling"]
    lines = [
        f"# Demo recipe study ({doc['date']}, {doc['machine']})", "",
        f"Phantom data ({s['patients']} patients; {s['n_train']} training frames, ED and ES; "
        f"scored on {s['n_test']} held-out frames), width {s['width']} at {s['size']}x{s['size']}, "
        f"each run stopped after **{s['cpu_seconds']} CPU-s** of its own process (torch on "
        f"{s['threads']} thread), seeds {s['seeds']}, interleaved. Load average during the study: "
        f"{doc['load_range'][0]:.1f} to {doc['load_range'][1]:.1f} on {doc['cpus']} CPUs.", "",
        "Dice of the real-trained judge on the generated frames: mean +- std over seeds. Floor "
        "(grey sector, mask-agnostic) LV/MYO/LA "
        f"{fl['lv'][0]:.3f} / {fl['myo'][0]:.3f} / {fl['la'][0]:.3f}; ceiling (real frames) "
        f"{ce['lv'][0]:.3f} / {ce['myo'][0]:.3f} / {ce['la'][0]:.3f}; standard error of one "
        f"run's Dice over frames about {doc['typical_se']:.3f}.", "",
        "| config | options | iterations | CPU-s/it | LV | MYO | LA | PSNR dB |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, r in doc["summary"].items():
        cells = " | ".join(f"{r[k][0]:.3f} +- {r[k][1]:.3f}" for k in STRUCTS)
        lines.append(
            f"| {name} | `{json.dumps(r['options'])}` | {r['iters']:.0f} | {r['cpu_s_per_it']} | "
            f"{cells} | {r['psnr']:.2f} |"
        )
    lines += ["", "Runs (in order):", "",
              "| config | seed | iters | wall s | load | LV | MYO | LA |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in doc["runs"]:
        d = r["dice"]
        lines.append(
            f"| {r['config']} | {r['seed']} | {r['iters']} | {r['wall_s']} | "
            f"{r['load_after'][0]} | {d['lv'][0]:.3f} | {d['myo'][0]:.3f} | {d['la'][0]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-seconds", type=float, default=60.0)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--configs", default="ref,lr3,skips,resize")
    ap.add_argument("--patients", type=int, default=80)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seg-iters", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    names, seeds = args.configs.split(","), [int(s) for s in args.seeds.split(",")]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        ap.error(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "phantom"
        synthesize_dataset(root, args.patients, layout="nifti", seed=0, views=("4CH",),
                           with_sequence=False, progress=False)  # fmt: skip
        opts: dict[str, Any] = dict(view="4CH", phase="both", size=(args.size, args.size))
        train_set = load_pairs(root, split="train", **opts)
        valid_set = load_pairs(root, split="valid", **opts)
        test_set = load_pairs(root, split="test", **opts)
        held = replace(test_set, masks=np.concatenate([valid_set.masks, test_set.masks]),
                       images=np.concatenate([valid_set.images, test_set.images]))  # fmt: skip
        judge = train_segmenter(train_set.images, train_set.masks,
                                SegmenterSettings(iters=args.seg_iters), seed=0)  # fmt: skip
        region = sector(held.images)
        data = {"train": train_set, "valid": valid_set, "test": held, "judge": judge,
                "sector": region}  # fmt: skip
        floor = score(grey_sector(held.images, sector_level(train_set.images)), held, judge,
                      region)  # fmt: skip
        ceiling = score(held.images, held, judge, region)
        print("floor", floor, "ceiling", ceiling, flush=True)
        base = TrainConfig(data=str(root), width=args.width, image_size=args.size, phase="both",
                           iters=10**9, val_every=0, ckpt_every=10**9, log_every=50,
                           tensorboard=False, keep_last=1, device="cpu")  # fmt: skip
        runs = []
        for k, seed in enumerate(seeds):
            for name in names if k % 2 == 0 else names[::-1]:
                runs.append(one_run(name, seed, base, args.cpu_seconds, data, tmp))
                loads.append(os.getloadavg()[0])
    ses = [r["dice"][s][1] for r in runs for s in STRUCTS]
    doc = {
        "date": date.today().isoformat(),
        "machine": f"{cpu_info().get('model') or platform.machine()}, {os.cpu_count()} CPUs",
        "cpus": os.cpu_count(),
        "load_range": [min(loads), max(loads)],
        "wall_s": round(time.perf_counter() - t0, 1),
        "settings": {**vars(args), "out": str(args.out), "seeds": seeds,
                     "n_train": len(train_set.images), "n_test": len(held.images)},
        "floor": floor["dice"], "ceiling": ceiling["dice"],
        "floor_psnr": floor["psnr"], "typical_se": float(np.median(ses)),
        "runs": runs,
        "summary": aggregate(runs),
    }  # fmt: skip
    stem = f"demo-study-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
