"""Real TensorRT on a real GPU: what the fake cannot prove. Skipped (with the reason) elsewhere.

Run on a GPU machine with TensorRT and cuda-python or pycuda installed:
    python -m pytest -m gpu tests/runtime/test_tensorrt_gpu.py -v
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from runtime_helpers import SIZE, labels_mask

from echogen_trt.artifacts import provenance as pv
from echogen_trt.errors import BackendUnavailable
from echogen_trt.runtime.availability import tensorrt_module
from echogen_trt.runtime.gpu import cuda_mem

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(tensorrt_module() is None, reason="TensorRT not installed (only stubs)"),
]


@pytest.fixture(scope="session")  # session: set up (or skip) before the session `models`
def gpu():
    trt = tensorrt_module()
    try:
        cuda = cuda_mem.get_cuda_api()
        cuda_mem.require_device(cuda, 0)
    except BackendUnavailable as err:
        pytest.skip(f"no CUDA GPU ({err})")
    return trt, cuda


def masks(n: int) -> np.ndarray:
    return np.stack([labels_mask((SIZE, SIZE), i) for i in range(n)])[:, None].astype(np.float32)


def ort_run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"mask": x})[0]


@pytest.mark.parametrize(
    ("precision", "fp16_onnx"),
    [("fp32", False), ("fp16", False), ("fp16", True)],
    ids=["fp32", "fp16-flag", "fp16-strongly-typed"],
)
def test_real_engine_matches_onnxruntime(gpu, models, tmp_path, precision, fp16_onnx):
    from echogen_trt.export.fp16 import convert_file_fp16
    from echogen_trt.export.trt_build import build_engine
    from echogen_trt.runtime.backends.tensorrt import TensorRTBackend
    from echogen_trt.runtime.gpu.trt_api import trt_version

    version = trt_version(gpu[0])
    if precision == "fp16" and not fp16_onnx and version >= (11, 0):
        pytest.skip("TensorRT 11 has no BuilderFlag.FP16")
    if fp16_onnx and version < (10, 0):
        pytest.skip("strong typing needs TensorRT 10+")
    source = models.onnx
    if fp16_onnx:
        source = convert_file_fp16(models.onnx, tmp_path / "m.fp16.onnx").path
    cache = tmp_path / "timing.cache"
    result = build_engine(source, tmp_path / "m.engine", precision=precision, max_batch=4,
                          workspace_mb=512, timing_cache=cache)  # fmt: skip
    assert cache.is_file() and result.engine_bytes > 0
    prov = json.loads(pv.provenance_path(result.engine_path).read_text())
    assert prov["precision"] == precision
    if precision == "fp16":
        assert prov["layer_precisions"].get("fp16", 0) > 0, prov["layer_precisions"]
    tolerance = 1e-4 if precision == "fp32" else 3e-2
    with TensorRTBackend(str(result.engine_path)) as backend:
        for n in (1, 3, 4):
            x = masks(n)
            out = backend.infer({"mask": x})["echo"]
            np.testing.assert_allclose(out, ort_run(models.onnx, x), atol=tolerance)
        assert set(backend.timings()) == {"h2d", "compute", "d2h"}


def test_real_engine_static_batch(gpu, models, tmp_path):
    from echogen_trt.export.trt_build import build_engine
    from echogen_trt.runtime.backends.tensorrt import TensorRTBackend

    result = build_engine(models.static2, tmp_path / "s.engine", precision="fp32")
    with TensorRTBackend(str(result.engine_path)) as backend:
        assert backend.max_batch == 2
        x = masks(1)
        np.testing.assert_allclose(backend.infer({"mask": x})["echo"], ort_run(models.onnx, x),
                                   atol=1e-4)  # fmt: skip
