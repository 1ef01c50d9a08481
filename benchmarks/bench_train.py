"""Training speed: iterations/s of the reference step (fakes, two D steps, one G step).

Cases (batch 8, sampled like the loop does):
- reference: width 64, 256x256, the paper's model (17.2 GFLOP forward per frame for G).
- small: width 8, 64x64, the size the tests train at.

Each case times `train.gan.train_step` after warm-up steps, on synthetic mask/frame pairs, and
reports median / p95 step time and iterations/s. On a GPU pass --device cuda (and --amp bf16,
--channels-last to compare).

Run: `PYTHONPATH=src python benchmarks/bench_train.py [--iters 3] [--device cpu]
[--json benchmarks/results/train_cpu.json]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echogen_trt.train.config import TrainConfig
from echogen_trt.train.device import resolve_device
from echogen_trt.train.gan import build_gan, train_step

CASES: dict[str, dict[str, Any]] = {
    "reference": dict(width=64, image_size=256),
    "small": dict(width=8, image_size=64),
}


def _env(device: torch.device) -> dict[str, Any]:
    try:
        from echogen_trt.bench.env import collect_env

        env: dict[str, Any] = collect_env()
    except ImportError:
        env = {"python": platform.python_version(), "machine": platform.machine()}
    env["torch_threads"] = torch.get_num_threads()
    env["train_device"] = str(device)
    if device.type == "cuda":
        env["train_gpu"] = torch.cuda.get_device_name(device)
    return env


def _pairs(n: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks with labels 0..3 in blocks and frames that follow them (content does not matter
    for speed, but keeps the losses finite and realistic)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4, (n, 1, size // 16, size // 16))
    masks = np.kron(blocks, np.ones((1, 1, 16, 16))).astype(np.float32)
    images = (masks / 4 + rng.uniform(0, 0.2, masks.shape)).astype(np.float32)
    return torch.from_numpy(masks).to(device), torch.from_numpy(images).to(device)


def bench_case(name: str, iters: int, warmup: int, device: torch.device, **opts: Any) -> dict:
    cfg = TrainConfig(batch_size=8, device=str(device), **CASES[name], **opts)
    gan = build_gan(cfg, device)
    masks, images = _pairs(32, cfg.image_size, device)
    sampler = torch.Generator().manual_seed(0)
    times = []
    load_before = os.getloadavg()[0]
    for i in range(warmup + iters):
        idx = torch.randint(len(masks), (cfg.batch_size,), generator=sampler).to(device)
        m, x = masks[idx], images[idx]
        if cfg.channels_last:
            m, x = (t.contiguous(memory_format=torch.channels_last) for t in (m, x))
        start = time.perf_counter()
        train_step(gan, m, x, cfg).tolist()  # .tolist() syncs, like the loop's finiteness check
        if i >= warmup:
            times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return {
        "case": name,
        "width": cfg.width,
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "amp": cfg.amp,
        "channels_last": cfg.channels_last,
        "iters_timed": iters,
        "step_ms_median": round(float(np.median(ms)), 2),
        "step_ms_p95": round(float(np.percentile(ms, 95)), 2),
        "it_per_s": round(1e3 / float(np.median(ms)), 3),
        "frames_per_s": round(cfg.batch_size * 1e3 / float(np.median(ms)), 2),
        # other work on the machine slows CPU timings: record how busy it was
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3, help="timed steps at the reference size")
    parser.add_argument("--small-iters", type=int, default=30, help="timed steps at the small size")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="off", choices=("off", "bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--cases", default="reference,small")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    opts = dict(amp=args.amp, channels_last=args.channels_last)
    rows = []
    for name in args.cases.split(","):
        iters = args.iters if name == "reference" else args.small_iters
        row = bench_case(name, iters, args.warmup, device, **opts)
        print(
            f"{row['case']:<10} width {row['width']:>2} {row['image_size']}x{row['image_size']} "
            f"batch {row['batch_size']}: {row['it_per_s']:.3f} it/s "
            f"(median {row['step_ms_median']:.1f} ms, p95 {row['step_ms_p95']:.1f} ms)"
        )
        rows.append(row)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": rows, "env": _env(device)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
