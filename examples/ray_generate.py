"""Generate frames with Ray Data: the same files, byte for byte, as `echogen-trt generate`.

    pip install 'ray[data]' echogen-trt
    python examples/ray_generate.py masks/ --out frames/ --model model.onnx --actors 4

`generate`'s own planner decides which masks become which frames (relative paths mirrored under
--out); Ray Data spreads them over an actor pool, each actor opening the model once
(`MaskToEcho`) and writing its frames atomically, as `generate` does. A mask that cannot be read
is reported and skipped; the exit status is then 1.

Ray pays off across machines (`ray start --address=...`) or when masks and frames live on remote
storage; on one machine `generate` (or `--shard` processes) does the same without Ray's start-up
cost (README, "Scaling out").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.errors import EchogenError
from echogen_trt.runtime import MaskToEcho
from echogen_trt.runtime.io import read_mask, write_frame
from echogen_trt.runtime.job_plan import collect_inputs, plan_jobs


class FramesFromMasks:
    """One per actor: the model opens once; each call turns a batch of mask files into frames."""

    def __init__(self, model: str, batch_size: int = 8) -> None:
        self.gen = MaskToEcho(model, batch_size=batch_size).open()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        masks, outs, errors = [], [], []
        for src, out in zip(batch["src"], batch["out"], strict=True):
            try:
                masks.append(read_mask(str(src)))
                outs.append(str(out))
                errors.append("")
            except EchogenError as err:  # reported by the driver; the others go on
                errors.append(" ".join(str(err).split()))
        frames = self.gen.generate(masks) if masks else np.zeros((0, 1, 1), np.uint8)
        for out, frame in zip(outs, frames, strict=True):
            write_frame(out, frame)
        return {"src": batch["src"], "error": np.array(errors, dtype=object)}


def ray_generate(
    inputs: list[str],
    out: str,
    model: str,
    *,
    actors: int = 2,
    batch_size: int = 8,
    recursive: bool = False,
) -> list[tuple[str, str]]:
    """Write a frame per mask under `out` with a Ray Data actor pool; returns the failures."""
    import ray

    found, failed = collect_inputs(inputs, recursive=recursive)
    dirs = [Path(i) for i in inputs if Path(i).is_dir()]
    jobs = plan_jobs(found, Path(out), input_dirs=dirs)
    for job in jobs:
        job.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = [{"src": str(j.src), "out": str(j.out)} for j in jobs]
    results = (
        ray.data.from_items(rows)
        .map_batches(
            FramesFromMasks,
            fn_constructor_kwargs={"model": model, "batch_size": batch_size},
            batch_size=batch_size,
            concurrency=actors,  # a pool of `actors` actors, each holding the model
            batch_format="numpy",
        )
        .take_all()
    )
    return failed + [(str(r["src"]), str(r["error"])) for r in results if r["error"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="mask folders or files")
    parser.add_argument("--out", required=True, help="output folder (mirrors the inputs)")
    parser.add_argument("--model", required=True, help="an .engine, .onnx or .xml file")
    parser.add_argument("--actors", type=int, default=2, help="model copies in the pool [2]")
    parser.add_argument("--batch-size", type=int, default=8, help="masks per model call [8]")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into folders")
    args = parser.parse_args()
    failed = ray_generate(
        args.inputs,
        args.out,
        args.model,
        actors=args.actors,
        batch_size=args.batch_size,
        recursive=args.recursive,
    )
    for path, reason in failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
