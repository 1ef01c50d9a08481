"""Does a VNNI CPU want 8-bit weights? (issue #25, item 5)

The shipped OpenVINO INT8 recipe turns NNCF's overflow fix on (weights quantized to 7 bits in the
first layers), needed only where INT8 dot products add pairs of u8 x s8 products in saturating
int16 (`vpmaddubsw`, CPUs without VNNI). On a CPU with VNNI or AMX the products accumulate in
int32, so the fix only costs a bit of weight resolution. This study measures, on one machine:

- accuracy: PSNR against FP32 on the tree's held-out test masks of a trained checkpoint, for the
  shipped recipe and for the same recipe with the overflow fix off (8-bit weights);
- speed: both recipes on a reference-size model (width 64, 256x256, random weights, forced past
  the gate), batch 1, OpenVINO, calls interleaved for `--seconds`, with the load recorded.

Run: `PYTHONPATH=src python benchmarks/int8_vnni_study.py --trained CKPT --data TREE
--reference REF.pt --calib TREE2 [--out study.json]`. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.export.int8 import Int8Recipe, export_int8
from echogen_trt.fileio import write_text_atomic
from echogen_trt.runtime.backend_choice import alternate_calls
from echogen_trt.runtime.cpu import cpu_flags
from echogen_trt.runtime.registry import open_backend

RECIPES = {
    "shipped (overflow fix: 7-bit weights)": Int8Recipe(),
    "overflow fix off (8-bit weights)": Int8Recipe(overflow_fix=False),
}


def accuracy(ckpt: Path, data: Path, work: Path) -> list[dict[str, Any]]:
    out = []
    for i, (name, recipe) in enumerate(RECIPES.items()):
        r = export_int8(ckpt, work / f"acc{i}.xml", calibrate=data, recipe=recipe, force=True)
        check = r.verify.checks[0]
        out.append({"recipe": name, "psnr_db": round(check.number or 0.0, 2),
                    "n_calibration": r.n_calibration, "n_heldout": r.n_heldout})  # fmt: skip
    return out


def speed(reference: Path, data: Path, work: Path, seconds: float) -> list[dict[str, Any]]:
    paths = {}
    for i, (name, recipe) in enumerate(RECIPES.items()):
        paths[name] = work / f"ref{i}.xml"
        if not paths[name].exists():  # a --work folder keeps an earlier run's IRs
            export_int8(reference, paths[name], calibrate=data, recipe=recipe, force=True)
    opened = {name: open_backend(p).open() for name, p in paths.items()}
    x = np.random.default_rng(0).uniform(0, 3, (1, 1, 256, 256)).astype(np.float32)
    load = [round(v, 2) for v in os.getloadavg()]
    try:
        feeds = {name: (b, {b.meta.input_name: x}) for name, b in opened.items()}
        for b, feed in feeds.values():
            b.infer(feed)  # warm-up, validated
        times = alternate_calls(feeds, seconds, min_calls=5)
    finally:
        for b in opened.values():
            b.close()
    after = [round(v, 2) for v in os.getloadavg()]
    base = statistics.median(times[next(iter(times))])
    return [{"recipe": n, "calls": len(t), "median_ms": round(statistics.median(t), 1),
             "x_shipped": round(base / statistics.median(t), 3), "load_before": load,
             "load_after": after} for n, t in times.items()]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trained", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--calib", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--work", type=Path, help="folder for the IRs (default: temporary)")
    args = parser.parse_args(argv)
    flags = sorted(f for f in cpu_flags() if "vnni" in f or f.startswith("amx"))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = {
            "cpu_flags": flags,
            "load_before": [round(v, 2) for v in os.getloadavg()],
            "accuracy": accuracy(args.trained, args.data, work),
            "speed": speed(args.reference, args.calib, work, args.seconds),
        }
    text = json.dumps(result, indent=2)
    if args.out:
        write_text_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
