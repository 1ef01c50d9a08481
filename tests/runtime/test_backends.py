"""The Backend contract, run against every backend installed here, plus backend specifics."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from runtime_helpers import SIZE, labels_mask

from echogen_trt.errors import BackendUnavailable, CheckpointError, InputMismatch, InternalError
from echogen_trt.runtime.availability import has_module
from echogen_trt.runtime.backends import onnxrt
from echogen_trt.runtime.backends.base import Backend
from echogen_trt.runtime.registry import open_backend

_NO_OPENVINO = pytest.mark.skipif(
    not has_module("openvino"), reason="openvino not installed (extra [openvino])"
)
KINDS = [
    pytest.param("onnxrt", id="onnxrt"),
    pytest.param(
        "torch",
        id="torch",
        marks=pytest.mark.skipif(not has_module("torch"), reason="torch not installed"),
    ),
    pytest.param("openvino", id="openvino-onnx", marks=_NO_OPENVINO),
    pytest.param("openvino-ir", id="openvino-ir", marks=_NO_OPENVINO),
]


def _model_for(kind: str, models: SimpleNamespace) -> Path:
    if kind == "openvino-ir":
        return models.ir
    return {"onnxrt": models.onnx, "torch": models.ckpt, "openvino": models.onnx}[kind]


def _feed(n: int = 3) -> np.ndarray:
    masks = [labels_mask((SIZE, SIZE), i) for i in range(n)]
    return np.stack(masks).astype(np.float32)[:, None]


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, models: SimpleNamespace) -> Backend:
    kind = "openvino" if request.param == "openvino-ir" else request.param
    b = open_backend(_model_for(request.param, models), kind)
    yield b  # type: ignore[misc]
    b.close()


def test_lifecycle_and_metadata(backend: Backend, models: SimpleNamespace) -> None:
    assert not backend.is_open
    for what in ("inputs", "meta"):
        with pytest.raises(InternalError, match=rf"{what} before open\(\)"):
            getattr(backend, what)
    with pytest.raises(InternalError, match=r"infer\(\) before open\(\)"):
        backend.infer({"mask": _feed()})
    with backend:
        assert backend.open() is backend  # idempotent
        meta = backend.meta
        assert meta.kept_labels == models.meta.kept_labels == (1, 3)
        assert meta.input_size == (SIZE, SIZE) and meta.io == "float"
        spec = backend.inputs[meta.input_name]
        assert spec.dtype == np.float32 and spec.shape == (None, 1, SIZE, SIZE)
        assert backend.outputs[meta.output_name].shape == (None, 1, SIZE, SIZE)
    assert not backend.is_open


def test_infer_validates_names_dtypes_shapes(backend: Backend) -> None:
    backend.open()
    feed = _feed()
    with pytest.raises(InputMismatch, match=r"inputs \| got \['x'\], expected \['mask'\]"):
        backend.infer({"x": feed})
    with pytest.raises(InputMismatch, match=r"input 'mask' \| dtype float64, expected float32"):
        backend.infer({"mask": feed.astype(np.float64)})
    with pytest.raises(
        InputMismatch, match=r"shape \(3, 1, 32, 32\), expected \('?\?'?, 1, 64, 64\)"
    ):
        backend.infer({"mask": feed[:, :, :32, :32]})


def test_infer_outputs_copies_and_latency(backend: Backend) -> None:
    backend.open()
    assert backend.last_latency_ms is None
    feed = _feed()
    first = backend.infer({"mask": feed})["echo"]
    assert backend.last_latency_ms is not None and backend.last_latency_ms > 0
    assert first.shape == (3, 1, SIZE, SIZE) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.std() > 0.01
    kept = first.copy()
    first[:] = -1  # a copy: scribbling on it must not change the next result
    second = backend.infer({"mask": feed})["echo"]
    np.testing.assert_array_equal(second, kept)
    reused = backend.infer({"mask": feed}, reuse_outputs=True)["echo"]
    np.testing.assert_array_equal(reused, kept)
    one = backend.infer({"mask": feed[1:2]})["echo"]  # batch-independent (eval-mode BN)
    np.testing.assert_allclose(one[0], kept[1], atol=1e-5)


def test_backends_agree(models: SimpleNamespace) -> None:
    pytest.importorskip("torch")
    feed = _feed(4)
    with open_backend(models.onnx) as ort_b, open_backend(models.ckpt) as torch_b:
        a = ort_b.infer({"mask": feed})["echo"]
        b = torch_b.infer({"mask": feed})["echo"]
    np.testing.assert_allclose(a, b, atol=1e-4)


# -- ONNX Runtime specifics ----------------------------------------------------------------------
def test_choose_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxrt, "tensorrt_libs_present", lambda: True)
    assert onnxrt.choose_providers(None, everything[::-1]) == everything
    monkeypatch.setattr(onnxrt, "tensorrt_libs_present", lambda: False)
    assert onnxrt.choose_providers(None, everything) == everything[1:]
    assert onnxrt.choose_providers(["trt"], everything) == everything  # asked for: tried anyway
    avail = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnxrt.choose_providers(None, avail) == avail
    assert onnxrt.choose_providers(["cpu"], avail) == ["CPUExecutionProvider"]
    assert onnxrt.choose_providers(["CUDA"], avail) == avail  # CPU appended as the fallback
    with pytest.raises(BackendUnavailable, match=r"\['TensorrtExecutionProvider'\] not available"):
        onnxrt.choose_providers(["tensorrt"], avail)


def test_unavailable_provider_is_refused_on_open(toy) -> None:  # type: ignore[no-untyped-def]
    b = onnxrt.OnnxRuntimeBackend(str(toy()), providers=["cuda"])
    if "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers():
        pytest.skip("CUDA provider installed")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        b.open()
    assert not b.is_open


def test_physical_cores() -> None:
    import os

    from echogen_trt.runtime.cpu import physical_cores

    cores = physical_cores()
    assert cores in range(1, (os.cpu_count() or 1) + 1)


def test_ort_threads_sleep_unless_spinning_is_asked_for() -> None:
    import onnxruntime as ort

    def spinning(**opts: object) -> str:
        options = onnxrt.OnnxRuntimeBackend("unused.onnx", **opts)._session_options(ort)
        try:
            return str(options.get_session_config_entry("session.intra_op.allow_spinning"))
        except Exception:  # ORT raises its own pybind error for an entry never set
            return "ORT's default (spinning)"

    assert spinning() == "0"  # the default measured under load (module docstring)
    assert spinning(spin=True) == "ORT's default (spinning)"


def test_io_binding_path_matches_plain_run(toy) -> None:  # type: ignore[no-untyped-def]
    path = toy()
    feed = _feed(2)
    with onnxrt.OnnxRuntimeBackend(str(path), io_binding=True, threads=1) as bound:
        a = bound.infer({"mask": feed})["echo"]
    with onnxrt.OnnxRuntimeBackend(str(path), io_binding=False) as plain:
        b = plain.infer({"mask": feed})["echo"]
        assert (
            plain.providers == ["CPUExecutionProvider"] or "CPUExecutionProvider" in plain.providers
        )
    np.testing.assert_array_equal(a, b)


def test_static_and_uint8_specs(toy) -> None:  # type: ignore[no-untyped-def]
    with onnxrt.OnnxRuntimeBackend(str(toy(batch=2))) as b:
        assert b.inputs["mask"].shape == (2, 1, SIZE, SIZE)
        with pytest.raises(
            InputMismatch, match=r"shape \(3, 1, 64, 64\), expected \(2, 1, 64, 64\)"
        ):
            b.infer({"mask": _feed(3)})
    with onnxrt.OnnxRuntimeBackend(str(toy(io="uint8"))) as b:
        assert b.inputs["mask"].dtype == np.uint8 and b.outputs["echo"].dtype == np.uint8
        assert b.meta.io == "uint8"
        assert b.inputs["mask"].shape == (None, SIZE, SIZE)


def test_broken_or_foreign_onnx_files(tmp_path: Path, toy) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(InputMismatch, match=r"bad\.onnx \| ONNX Runtime cannot load it"):
        onnxrt.OnnxRuntimeBackend(str(bad)).open()
    model = onnx.load(str(toy()))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    b = onnxrt.OnnxRuntimeBackend(str(bare))
    with pytest.raises(InputMismatch, match=r"bare\.onnx \| has no echogen metadata"):
        b.open()


# -- PyTorch specifics ---------------------------------------------------------------------------
def test_torch_backend_errors(tmp_path: Path, models: SimpleNamespace) -> None:
    torch = pytest.importorskip("torch")
    from echogen_trt.train.torch_backend import TorchBackend

    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match=r"junk\.pt \| cannot be read"):
        TorchBackend(str(tmp_path / "junk.pt")).open()
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="torch_device 'cuda'"):
            TorchBackend(str(models.ckpt), torch_device="cuda").open()
    with TorchBackend(str(models.ckpt), torch_device="cpu") as b:
        assert b.meta.checkpoint_sha256 and len(b.meta.checkpoint_sha256) == 64
        assert b.meta.model_config["width"] == 4
