"""The machine's measured limit: GFLOP/s of a large matrix product at a given precision.

A model's achieved GFLOP/s means little alone; as a fraction of what this very machine reaches on
the friendliest workload there is (a big square GEMM) it says how much headroom is left.

Every installed library is tried and the fastest wins, because which one is fastest depends on
the machine (BLAS build, AVX2 vs AVX-512 kernels, MKL on AMD): a ceiling from one library alone
can sit below what another library's conv kernels reach, and models would "beat" it.

- CPU: numpy, ONNX Runtime (a MatMul-only graph) and torch at FP32. For FP16 also ONNX Runtime's
  FP16 MatMul and, on CPUs with native FP16 arithmetic (avx512_fp16, ARM fphp/asimdhp), torch's;
  the FP32 GEMMs count too, because a runtime may run an FP16 graph through FP32 kernels (torch's
  FP16 CPU GEMM without native support ran at 0.4 GFLOP/s, so it is not tried there).
- CUDA: torch (TF32 off for FP32) and ONNX Runtime's CUDA provider, inputs and output on the GPU.

Each product is repeated for `seconds`; the best repetition is the ceiling (a limit, not a
typical value) and the median is kept beside it. torch is imported lazily, only here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from echogen_trt.artifacts.precision import PRECISIONS
from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime.availability import has_module

DEFAULT_N = {"cpu": 2048, "cuda": 8192}
NATIVE_FP16_CPU_FLAGS = ("avx512_fp16", "fphp", "asimdhp")


@dataclass(frozen=True)
class Ceiling:
    """Best and median GFLOP/s of an n x n x n GEMM on one device at one precision."""

    device: str
    precision: str
    gflops: float
    gflops_median: float
    library: str
    n: int
    reps: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _repeat(run: Callable[[], object], n: int, seconds: float) -> tuple[float, float, int]:
    """(best, median) GFLOP/s of `run` (one n^3 GEMM), after one warm-up call."""
    run()
    rates: list[float] = []
    stop = time.perf_counter() + seconds
    while not rates or (time.perf_counter() < stop and len(rates) < 1000):
        t0 = time.perf_counter()
        run()
        rates.append(2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
    return max(rates), float(np.median(rates)), len(rates)


def _numpy_gemm(n: int, seconds: float, threads: int | None = None) -> Ceiling:
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    best, med, reps = _repeat(lambda: np.matmul(a, b, out=out), n, seconds)
    return Ceiling("cpu", "fp32", best, med, f"numpy {np.__version__}", n, reps)


def _torch_gemm(
    device: str, precision: str, n: int, seconds: float, threads: int | None = None
) -> Ceiling:
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]
    dev = torch.device("cuda" if device == "cuda" else "cpu")
    a = torch.rand(n, n, dtype=dtype, device=dev)
    b = torch.rand(n, n, dtype=dtype, device=dev)
    out = torch.empty(n, n, dtype=dtype, device=dev)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run() -> None:
        torch.matmul(a, b, out=out)
        sync()

    tf32 = None
    if device == "cuda":
        tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.inference_mode():
            best, med, reps = _repeat(run, n, seconds)
    finally:
        if tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = tf32
    return Ceiling(device, precision, best, med, f"torch {torch.__version__}", n, reps)


def _ort_gemm(
    device: str, precision: str, n: int, seconds: float, threads: int | None = None
) -> Ceiling:
    """A MatMul-only ONNX graph on ONNX Runtime (MLAS on the CPU, cuBLAS on CUDA)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from echogen_trt.runtime.cpu import physical_cores

    elem, dtype = {
        "fp32": (TensorProto.FLOAT, np.float32),
        "fp16": (TensorProto.FLOAT16, np.float16),
    }[precision]
    io = [helper.make_tensor_value_info(name, elem, [n, n]) for name in ("a", "b", "c")]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm", io[:2], io[2:]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or physical_cores()
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    session = ort.InferenceSession(model.SerializeToString(), options, providers=[provider])
    if session.get_providers()[0] != provider:  # ORT falls back to the CPU with a warning
        raise BackendUnavailable(f"onnxruntime | {provider} did not load")
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32).astype(dtype) for _ in range(2))
    binding = session.io_binding()
    where = "cuda" if device == "cuda" else "cpu"
    for name, arr in (("a", a), ("b", b)):
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, where, 0))
    binding.bind_ortvalue_output(
        "c", ort.OrtValue.ortvalue_from_shape_and_type((n, n), dtype, where, 0)
    )
    best, med, reps = _repeat(lambda: session.run_with_iobinding(binding), n, seconds)
    return Ceiling(device, precision, best, med, f"onnxruntime {ort.__version__}", n, reps)


def cpu_has_native_fp16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = set(fh.read().split())
    except OSError:
        return False
    return any(f in flags for f in NATIVE_FP16_CPU_FLAGS)


def _ort_has(provider: str) -> bool:
    import onnxruntime as ort

    return provider in ort.get_available_providers()


def _candidates(device: str, precision: str) -> list[tuple[str, Callable[..., Ceiling]]]:
    """(label, measure(n, seconds, threads)) for every GEMM worth trying on this machine."""
    # the ORT GEMM graph is built with onnx, which the base install leaves out
    torch_ok, ort_ok = has_module("torch"), has_module("onnxruntime") and has_module("onnx")
    out: list[tuple[str, Callable[..., Ceiling]]] = []
    if device == "cuda":
        if torch_ok:
            out.append((f"torch {precision}", partial(_torch_gemm, "cuda", precision)))
        if ort_ok and _ort_has("CUDAExecutionProvider"):
            out.append((f"onnxruntime {precision}", partial(_ort_gemm, "cuda", precision)))
        return out
    out.append(("numpy fp32", _numpy_gemm))
    if ort_ok:
        out.append(("onnxruntime fp32", partial(_ort_gemm, "cpu", "fp32")))
    if torch_ok:
        out.append(("torch fp32", partial(_torch_gemm, "cpu", "fp32")))
    if precision == "fp16" and ort_ok:
        out.append(("onnxruntime fp16", partial(_ort_gemm, "cpu", "fp16")))
    if precision == "fp16" and torch_ok and cpu_has_native_fp16():
        out.append(("torch fp16", partial(_torch_gemm, "cpu", "fp16")))
    return out


def measure_ceiling(
    device: str = "cpu",
    precision: str = "fp32",
    *,
    seconds: float = 1.0,
    n: int | None = None,
    threads: int | None = None,
    cache: dict[str, Ceiling] | None = None,
) -> Ceiling:
    """Best GEMM GFLOP/s on `device` ("cpu" | "cuda") at `precision` ("fp32" | "fp16") over
    every installed library (numpy, ONNX Runtime, torch). `cache` keeps each library's result
    across calls, so the FP32 GEMMs a CPU FP16 ceiling also needs are measured once."""
    if device not in DEFAULT_N or precision not in PRECISIONS:
        raise ConfigError(
            f"ceiling | device={device!r}, precision={precision!r}. "
            "Expected device cpu or cuda and precision fp32 or fp16."
        )
    size = n or DEFAULT_N[device]
    measured, failed = [], []
    cache = {} if cache is None else cache
    for label, measure in _candidates(device, precision):
        key = f"{device} {label} n={size}"
        try:
            if key not in cache:
                cache[key] = measure(size, seconds, threads)
            measured.append(cache[key])
        except Exception as err:  # a missing provider, a CUDA error: try the next library
            failed.append(f"{label}: {type(err).__name__}: {str(err)[:120]}")
    if not measured:
        raise BackendUnavailable(
            f"ceiling {device}/{precision} | no library could run a GEMM "
            f"({'; '.join(failed) or 'none installed'}). "
            "Hint: install onnxruntime (onnxruntime-gpu) or torch, or pass --no-ceiling."
        )
    best = max(measured, key=lambda c: c.gflops)
    note = "best of: " + "; ".join(f"{c.library} {c.precision} {c.gflops:.1f}" for c in measured)
    note += " GFLOP/s" + (f"; failed: {'; '.join(failed)}" if failed else "")
    library = f"{best.library} {best.precision}"
    return Ceiling(
        device, precision, best.gflops, best.gflops_median, library, size, best.reps, note
    )
