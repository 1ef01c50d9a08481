"""Which backend should serve an .onnx file on a CPU-only machine: ONNX Runtime or OpenVINO?

Times `infer` (compute only) of one FP32 ONNX file on ONNX Runtime (CPU provider) and on OpenVINO
with one synchronous request (streams=1) and with each batch split over two asynchronous requests
(streams=2), in interleaved rounds: every round times each configuration once, so all of them see
the same machine load, and the per-round ratios to ONNX Runtime show how stable the verdict is.
The registry's auto choice for .onnx files (runtime/registry.py) cites this script's result.

Run: `PYTHONPATH=src python benchmarks/cpu_backend_choice.py MODEL.onnx [--rounds 6]
[--out benchmarks/results/cpu-backend-choice-<machine>-<date>.json]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.bench.env import collect_env, load_average
from echogen_trt.runtime.registry import open_backend

CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "onnxrt": ("onnxrt", {"providers": ["cpu"]}),
    "openvino streams=1": ("openvino", {"streams": 1}),
    "openvino streams=2": ("openvino", {"streams": 2}),
}


def measure(model: Path, batches: list[int], rounds: int, seconds: float) -> dict[str, Any]:
    backends = {k: open_backend(model, kind, **opts).open() for k, (kind, opts) in CONFIGS.items()}
    try:
        meta = next(iter(backends.values())).meta
        h, w = meta.input_size
        out: dict[str, Any] = {}
        for batch in batches:
            x = np.random.default_rng(0).integers(0, 4, (batch, 1, h, w)).astype(np.float32)
            feeds = {meta.input_name: x}
            for b in backends.values():
                b.infer(feeds, reuse_outputs=True)
            fps: dict[str, list[float]] = {k: [] for k in backends}
            for _ in range(rounds):
                for k, b in backends.items():
                    n, start = 0, time.perf_counter()
                    while n < 2 or time.perf_counter() - start < seconds:
                        b.infer(feeds, check=False, reuse_outputs=True)
                        n += 1
                    fps[k].append(n * batch / (time.perf_counter() - start))
            base = fps["onnxrt"]
            out[f"batch {batch}"] = {
                k: {
                    "fps_rounds": [round(v, 3) for v in f],
                    "ratio_rounds": [round(a / b, 3) for a, b in zip(f, base, strict=True)],
                    "ratio_median": round(
                        statistics.median(a / b for a, b in zip(f, base, strict=True)), 3
                    ),
                    "ratio_pooled": round(sum(f) / sum(base), 3),
                }
                for k, f in fps.items()
            }
        return out
    finally:
        for b in backends.values():
            b.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    env, load_before = collect_env(), load_average()
    start = time.perf_counter()
    batches = [int(b) for b in args.batches.split(",")]
    result = {
        "date": dt.date.today().isoformat(),
        "model": str(args.model),
        "cpu": env["cpu"],
        "load_before": load_before,
        "results": measure(args.model, batches, args.rounds, args.seconds),
        "load_after": load_average(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
