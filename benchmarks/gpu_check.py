"""The GPU checks the CPU test suite cannot make (run by `scripts/gpu_check`, < 5 min on one GPU).

On a machine with an NVIDIA GPU, PyTorch built for CUDA and cuda-python and/or pycuda (TensorRT
not needed):

1. `cuda_mem` with each installed CUDA library: pinned and device buffers (float32 and float16),
   H2D -> a PyTorch CUDA op on our stream (torch.cuda.ExternalStream) -> D2H, events, buffers
   reused over several rounds, results checked exactly;
2. the reference generator (width 64, 256x256) in FP32 vs TF32: the difference TensorRT's default
   BuilderFlag.TF32 would put into an "fp32" engine;
3. 20 training iterations each with --amp bf16, --amp fp16 and --channels-last on CUDA;
4. `pytest -m gpu`.

Figures go to benchmarks/results/gpu-check-<device>-<date>.json. Without a GPU it prints the
reason and exits 0, having done nothing. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TRAIN_RUNS = {"amp-bf16": ["--amp", "bf16"], "amp-fp16": ["--amp", "fp16"],
              "channels-last": ["--channels-last"]}  # fmt: skip


def skip_reason() -> str | None:
    """Why this machine cannot run the checks, or None when it can."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install torch, the CUDA build)"
    if not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA (CPU build)"
        return f"no CUDA GPU visible to PyTorch {torch.__version__} (built for {built})"
    return None


def slug(text: str) -> str:
    """'NVIDIA H200' -> 'nvidia-h200' (for file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


# -- 1. cuda_mem --------------------------------------------------------------------------------
class _DeviceView:
    """A raw device pointer as a torch tensor source (__cuda_array_interface__ v3)."""

    def __init__(self, ptr: int, count: int, dtype: np.dtype[Any]) -> None:
        # no "stream" key: the consumer does not synchronise; our stream orders the work
        self.__cuda_array_interface__ = {
            "shape": (count,), "typestr": dtype.str, "data": (ptr, False), "version": 2,
        }  # fmt: skip


def check_cuda_mem(name: str, count: int = 1 << 20, rounds: int = 3) -> dict[str, Any]:
    """Round trips through pinned/device buffers and a torch op on our stream, per dtype."""
    import torch

    from echogen_trt.errors import BackendUnavailable
    from echogen_trt.runtime.gpu import cuda_mem

    try:
        api = cuda_mem.IMPLEMENTATIONS[name]()
        cuda_mem.require_device(api, 0)
    except BackendUnavailable as err:
        return {"skipped": str(err)}
    out: dict[str, Any] = {}
    with api.bind(0):
        stream = api.stream_create()
        events = [api.event_create() for _ in range(4)]
        torch_stream = torch.cuda.ExternalStream(api.stream_handle(stream))
        for dtype in (np.dtype(np.float32), np.dtype(np.float16)):
            host_in, host_out = api.pinned_empty(count, dtype), api.pinned_empty(count, dtype)
            dev_in, dev_out = api.malloc(host_in.nbytes), api.malloc(host_out.nbytes)
            rng, times = np.random.default_rng(0), []
            try:
                for _ in range(rounds):  # the same buffers each round, as the backend does
                    host_in[:] = rng.uniform(-4, 4, count).astype(dtype)
                    api.event_record(events[0], stream)
                    api.memcpy_htod_async(dev_in, host_in, stream)
                    api.event_record(events[1], stream)
                    with torch.cuda.stream(torch_stream):
                        src = torch.as_tensor(_DeviceView(dev_in, count, dtype), device="cuda")
                        dst = torch.as_tensor(_DeviceView(dev_out, count, dtype), device="cuda")
                        dst.copy_(src * 2 + 1)
                    api.event_record(events[2], stream)
                    api.memcpy_dtoh_async(host_out, dev_out, stream)
                    api.event_record(events[3], stream)
                    api.stream_synchronize(stream)
                    expected = host_in * dtype.type(2) + dtype.type(1)
                    if not np.array_equal(host_out, expected):
                        raise AssertionError(f"{name} {dtype}: D2H result differs")
                    pairs = itertools.pairwise(events)
                    times.append([api.event_elapsed_ms(a, b) for a, b in pairs])
            finally:
                api.free(dev_in)
                api.free(dev_out)
                api.free_pinned(host_in)
                api.free_pinned(host_out)
            h2d, op, d2h = (float(np.median(col)) for col in zip(*times, strict=True))
            out[dtype.name] = {"mb": round(host_in.nbytes / 2**20, 2), "rounds": rounds,
                               "h2d_ms": h2d, "op_ms": op, "d2h_ms": d2h}  # fmt: skip
        for event in events:
            api.event_destroy(event)
        api.stream_destroy(stream)
    return out


# -- 2. TF32 vs FP32 ----------------------------------------------------------------------------
def measure_tf32(batch: int = 4) -> dict[str, Any]:
    """Max/mean |TF32 - FP32| of the reference generator's output in [0, 1]."""
    import torch

    from echogen_trt.export.verify import default_masks
    from echogen_trt.models.factory import build_generator

    torch.manual_seed(0)
    generator = build_generator(width=64, image_size=256).cuda().eval()
    masks = torch.from_numpy(default_masks((256, 256), batch // 2, batch - batch // 2, seed=1))
    x = masks.float()[:, None].cuda()
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    outputs = {}
    try:
        for mode, allow in (("fp32", False), ("tf32", True)):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
            with torch.no_grad():
                outputs[mode] = generator(x).double().cpu()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    diff = (outputs["tf32"] - outputs["fp32"]).abs()
    return {"batch": batch, "max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "exceeds_1e-4": bool(diff.max() > 1e-4)}  # fmt: skip


# -- 3. training --------------------------------------------------------------------------------
def train_runs(work: Path, iters: int = 20) -> dict[str, Any]:
    """`echogen-trt train` for `iters` iterations per option set on CUDA; final losses, time."""
    data = work / "phantom"
    _cli("synth", "--out", str(data), "--patients", "8", "--no-sequence", "--views", "4CH")
    out: dict[str, Any] = {}
    for name, flags in TRAIN_RUNS.items():
        run = work / name
        start = time.perf_counter()
        _cli("train", "--data", str(data), "--experiment", "ventricle", "--out", str(run),
             "--iters", str(iters), "--device", "cuda", "--val-every", "0", "--log-every", "10",
             "--ckpt-every", str(iters), *flags)  # fmt: skip
        lines = (run / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        losses = {k: last.get(k) for k in ("d_real", "d_fake", "g", "g_l1")}
        if not all(isinstance(v, float) and np.isfinite(v) for v in losses.values()):
            raise AssertionError(f"train {name}: no finite losses in metrics.jsonl ({last})")
        out[name] = {"seconds": round(time.perf_counter() - start, 1), "last": last}
    return out


def _cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "echogen_trt", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"echogen-trt {args[0]} failed: {done.stderr.strip()[-2000:]}")


# -- 4. pytest -m gpu ---------------------------------------------------------------------------
def run_pytest_gpu() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "tests"],
                          cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
    tail = done.stdout.strip().splitlines()[-15:]
    if done.returncode not in (0, 5):  # 5: no test collected
        raise AssertionError("pytest -m gpu failed:\n" + "\n".join(tail))
    return {"returncode": done.returncode, "summary": tail}


# -- the run ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--iters", type=int, default=20, help="training iterations per run")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason is not None:
        print(f"gpu_check: skipped, nothing run: {reason}")
        return 0
    import torch

    device = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    report: dict[str, Any] = {
        "device": device, "compute_capability": f"{major}.{minor}", "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "checks": {},
    }  # fmt: skip
    failed = False
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        checks: dict[str, Callable[[], dict[str, Any]]] = {
            "cuda_mem[cuda-python]": lambda: check_cuda_mem("cuda-python"),
            "cuda_mem[pycuda]": lambda: check_cuda_mem("pycuda"),
            "tf32_vs_fp32": measure_tf32,
            "train": lambda: train_runs(Path(tmp), args.iters),
            "pytest -m gpu": run_pytest_gpu,
        }
        for name, check in checks.items():
            start = time.perf_counter()
            try:
                result = check()
            except Exception as err:  # report every check, then fail
                result, failed = {"error": f"{type(err).__name__}: {err}"}, True
            result["seconds"] = round(time.perf_counter() - start, 2)
            report["checks"][name] = result
            print(f"gpu_check: {name}: {'FAILED' if 'error' in result else 'ok'} "
                  f"({result['seconds']} s)", flush=True)  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"gpu-check-{slug(device)}-{report['date'][:10]}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"gpu_check: wrote {os.path.relpath(path, Path.cwd())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
