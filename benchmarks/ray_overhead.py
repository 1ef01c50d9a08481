"""What Ray Data costs on one machine: `examples/ray_generate.py` against `echogen-trt generate`.

Each round runs both on the same masks and model, alternating, each in a fresh process (so both
pay their start-up: Python imports, and for Ray `ray.init` and the actor pool); the difference is
Ray's fixed cost, which only pays off across machines or with remote storage (README, "Scaling
out"). Records the machine load before and after every run; stops when --seconds are spent.

Run in a venv with `ray[data]` and echogen-trt installed:
`python benchmarks/ray_overhead.py MASKS_DIR MODEL.onnx [--seconds 300]
[--out benchmarks/results/ray-overhead-<machine>-<date>.json]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from echogen_trt.bench.env import collect_env, load_average

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ray_generate.py"


def commands(masks: Path, model: Path, out: Path) -> dict[str, list[str]]:
    common = [str(masks), "-r", "--out", str(out), "--model", str(model)]
    return {
        "generate": [sys.executable, "-m", "echogen_trt", "-q", "generate", *common, "--json"],
        "ray_generate": [sys.executable, str(EXAMPLE), *common, "--actors", "2"],
    }


def run_once(argv: list[str], out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    load_before = load_average()
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    frames = len(list(out.rglob("*.png")))
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{argv[:3]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return {"seconds": round(seconds, 2), "frames": frames, "load": [load_before, load_average()]}


def measure(masks: Path, model: Path, budget: float) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"generate": [], "ray_generate": []}
    deadline = time.monotonic() + budget
    with tempfile.TemporaryDirectory() as tmp:
        argvs = commands(masks, model, Path(tmp) / "out")
        while time.monotonic() < deadline or not runs["ray_generate"]:
            for name, argv in argvs.items():
                runs[name].append(run_once(argv, Path(tmp) / "out"))
    medians = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    return {
        "runs": runs,
        "median_seconds": medians,
        "ray_extra_seconds_median": round(medians["ray_generate"] - medians["generate"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("masks", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--seconds", type=float, default=300.0, help="stop after this budget")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "what": "examples/ray_generate.py (2 actors) vs echogen-trt generate, fresh processes",
        "ray": importlib.metadata.version("ray"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "masks": len([p for p in args.masks.rglob("*") if p.is_file()]),
        "cpus": os.cpu_count(),
        "env": collect_env(),
        **measure(args.masks, args.model, args.seconds),
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
