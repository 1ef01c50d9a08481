"""The GEMM ceiling: measured per library, the best kept, each library measured once per run."""

from __future__ import annotations

import pytest

from echogen_trt.bench import ceiling
from echogen_trt.errors import BackendUnavailable, ConfigError


def test_cpu_fp32_ceiling_is_the_best_library() -> None:
    cache: dict[str, ceiling.Ceiling] = {}
    c = ceiling.measure_ceiling("cpu", "fp32", seconds=0.0, n=128, cache=cache)
    assert (c.device, c.precision, c.n) == ("cpu", "fp32", 128)
    assert c.gflops > 0 and c.gflops >= c.gflops_median and c.reps >= 1
    assert c.gflops == max(m.gflops for m in cache.values())
    assert "numpy" in c.note and "onnxruntime" in c.note
    assert all(m.precision == "fp32" for m in cache.values())


def test_cpu_fp16_ceiling_reuses_the_fp32_measurements() -> None:
    cache: dict[str, ceiling.Ceiling] = {}
    fp32 = ceiling.measure_ceiling("cpu", "fp32", seconds=0.0, n=128, cache=cache)
    measured_fp32 = dict(cache)
    fp16 = ceiling.measure_ceiling("cpu", "fp16", seconds=0.0, n=128, cache=cache)
    assert all(cache[k] is v for k, v in measured_fp32.items())  # not measured again
    new = [c for k, c in cache.items() if k not in measured_fp32]
    assert new and all(c.precision == "fp16" for c in new)  # ONNX Runtime's FP16 MatMul
    assert fp16.gflops >= fp32.gflops  # FP32 kernels count towards the FP16 limit on a CPU


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="Expected device cpu or cuda"):
        ceiling.measure_ceiling("tpu", "fp32")
    with pytest.raises(ConfigError, match="precision fp32 or fp16"):
        ceiling.measure_ceiling("cpu", "int8")


def test_cuda_without_a_gpu_says_how_to_proceed(monkeypatch) -> None:
    def no_gpu(*args: object) -> ceiling.Ceiling:
        raise RuntimeError("no CUDA device")

    monkeypatch.setattr(ceiling, "_torch_gemm", no_gpu)
    monkeypatch.setattr(ceiling, "_ort_gemm", no_gpu)
    monkeypatch.setattr(ceiling, "_ort_has", lambda provider: True)
    with pytest.raises(BackendUnavailable, match=r"no library could run a GEMM.*--no-ceiling"):
        ceiling.measure_ceiling("cuda", "fp16", seconds=0.0, n=64)
