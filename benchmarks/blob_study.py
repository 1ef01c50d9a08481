"""The apex-blob study (issue 10): controlled runs, reference recipe vs each remedy.

Every run starts from the same seed, draws the same batches and trains the same number of
iterations on the same phantom data; only the recipe option differs. After training, the held-out
patients' frames are scored inside the fan (L1, PSNR, SSIM) and outside it (the share of
background pixels above 0.9, where every real frame is black: the blob).

Runs:
- zero: the reference recipe (Keras' zero output bias).
- zero_noadv: the same with the adversarial term off (pure L1): is the blob a GAN effect?
- target_mean: the output bias starts at the logit of the mean training target (the default).

Run: `PYTHONPATH=src python benchmarks/blob_study.py [--iters 300] [--size 128] [--width 16]
[--patients 60] [--runs zero,zero_noadv,target_mean]`; writes
benchmarks/results/blob-study-<date>.{json,md} and a picture of the frames (one row per
held-out patient: one column per run, then the real frame). About 7 minutes per run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from echogen_trt.data.dataset import load_pairs
from echogen_trt.data.synth import synthesize_dataset
from echogen_trt.metrics import frame_metrics
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.data_feed import as_tensors, sample_batch
from echogen_trt.train.gan import build_gan, output_bias_for, train_step

RUNS: dict[str, dict[str, Any]] = {
    "zero": {"output_bias": "zero"},
    "zero_noadv": {"output_bias": "zero", "adv_weight": 0.0},
    "target_mean": {"output_bias": "target_mean"},
    "target_mean_noadv": {"output_bias": "target_mean", "adv_weight": 0.0},
}
RESULTS = Path(__file__).resolve().parent / "results"


def score(generator: torch.nn.Module, masks: np.ndarray, images: np.ndarray) -> dict[str, Any]:
    generator.eval()
    with torch.no_grad():
        frames = generator(torch.from_numpy(masks.astype(np.float32))[:, None])[:, 0].numpy()
    return {"metrics": frame_metrics(frames, images), "frames": frames}


def run(name: str, base: TrainConfig, train_set: Any, test_set: Any) -> dict[str, Any]:
    """One controlled run: seed, batches and iterations as in every other run."""
    cfg = replace(base, **RUNS[name])
    device = torch.device("cpu")
    masks, images = as_tensors(train_set, device)
    gan = build_gan(cfg, device, output_bias_for(cfg, images))
    sampler = torch.Generator().manual_seed(cfg.seed)
    trace, start = [], time.perf_counter()
    for step in range(1, cfg.iters + 1):
        m, x = sample_batch(masks, images, cfg, sampler)
        train_step(gan, m, x, cfg)
        if step in (20, 40, 100) or step % 100 == 0 or step == cfg.iters:
            result = score(gan.G, test_set.masks, test_set.images)
            trace.append({"step": step, **result["metrics"]})
            print(name, trace[-1], f"{time.perf_counter() - start:.0f} s", flush=True)
    final = score(gan.G, test_set.masks, test_set.images)
    return {
        "options": RUNS[name],
        "out_bias": gan.model_config["out_bias"],
        "final": final["metrics"],
        "trace": trace,
        "seconds": round(time.perf_counter() - start, 1),
        "frames": final["frames"],
    }


def markdown(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = [
        f"# Apex-blob study ({doc['date']})",
        "",
        f"Phantom data ({s['patients']} patients, {s['n_train']} train / {s['n_test']} held out), "
        f"width {s['width']} at {s['size']}x{s['size']}, {s['iters']} iterations, seed "
        f"{s['seed']}, batch 8, reference learning rates; torch threads {s['threads']}.",
        "",
        "| run | options | white outside fan | in-fan L1 | PSNR dB | SSIM |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in doc["runs"].items():
        m = r["final"]
        lines.append(
            f"| {name} | {json.dumps(r['options'])} | {100 * m['sat_out']:.2f} % | "
            f"{m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.3f} |"
        )
    lines += ["", f"![frames]({doc['picture']})", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--patients", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="zero,zero_noadv,target_mean")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    names = args.runs.split(",")
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        ap.error(f"unknown run(s) {unknown}; choose from {list(RUNS)}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "phantom"
        synthesize_dataset(root, args.patients, layout="nifti", seed=args.seed, views=("4CH",),
                   with_sequence=False, progress=False)  # fmt: skip
        opts: dict[str, Any] = dict(experiment=TrainConfig.experiment, view="4CH", phase="ED",
                                    size=(args.size, args.size))  # fmt: skip
        train_set = load_pairs(root, split="train", **opts)
        test_set = load_pairs(root, split="test", **opts)
    base = TrainConfig(width=args.width, image_size=args.size, iters=args.iters, seed=args.seed)
    runs = {name: run(name, base, train_set, test_set) for name in names}
    stem = f"blob-study-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [np.hstack([*(r["frames"][i] for r in runs.values()), test_set.images[i]])
            for i in range(len(test_set.images))]  # fmt: skip
    picture = np.clip(np.rint(np.vstack(rows) * 255), 0, 255).astype(np.uint8)
    cv2.imwrite(str(args.out / f"{stem}.png"), picture)
    doc = {
        "date": date.today().isoformat(),
        "settings": {**vars(args), "out": str(args.out), "n_train": len(train_set.images),
                     "n_test": len(test_set.images), "patients_test": list(test_set.patients)},
        "runs": {n: {k: v for k, v in r.items() if k != "frames"} for n, r in runs.items()},
        "picture": f"{stem}.png",
        "columns": [*names, "real"],
    }  # fmt: skip
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
