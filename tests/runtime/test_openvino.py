"""OpenVINO backend specifics and the IR metadata round trip (contract: test_backends.py)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from runtime_helpers import SIZE, labels_mask

from echogen_trt.errors import BackendUnavailable, ConfigError, InputMismatch
from echogen_trt.runtime import registry

ov = pytest.importorskip("openvino", reason="openvino not installed (extra [openvino])")

from echogen_trt.artifacts import openvino_ir  # noqa: E402
from echogen_trt.runtime.backends.openvino import OpenVinoBackend  # noqa: E402


def _feed(n: int) -> np.ndarray:
    return np.stack([labels_mask((SIZE, SIZE), i) for i in range(n)]).astype(np.float32)[:, None]


def test_ir_metadata_round_trip(models: SimpleNamespace, tmp_path: Path) -> None:
    """Every ModelMeta field survives save_ir -> read_meta, and the IR's own section wins over
    the `framework` block OpenVINO copied from the ONNX file (which still says fp32)."""
    model = openvino_ir.load_model(models.onnx)
    from_onnx = openvino_ir.read_meta(model)
    assert from_onnx == models.meta  # OpenVINO's ONNX reader carries metadata_props over
    changed = replace(models.meta, precision="int8", step=42, recipe={"output_bias": "zero"})
    xml = tmp_path / "sub" / "m.xml"
    size = openvino_ir.save_ir(model, xml, changed)
    assert size == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    assert sorted(p.name for p in xml.parent.iterdir()) == ["m.bin", "m.xml"]  # no temp left
    again = openvino_ir.read_meta(openvino_ir.load_model(xml))
    assert again == changed and again.precision == "int8" and again.kept_labels == (1, 3)
    with OpenVinoBackend(str(xml)) as backend:
        assert backend.meta == changed


def test_ir_and_onnx_file_errors(models: SimpleNamespace, tmp_path: Path) -> None:
    xml = tmp_path / "m.xml"
    openvino_ir.save_ir(openvino_ir.load_model(models.onnx), xml, models.meta)
    xml.with_suffix(".bin").unlink()
    with pytest.raises(InputMismatch, match=r"m\.xml \| its weights m\.bin are missing"):
        OpenVinoBackend(str(xml)).open()
    junk = tmp_path / "junk.xml"
    junk.write_text("<net>not an IR")
    shutil.copy(models.onnx, tmp_path / "junk.bin")
    with pytest.raises(InputMismatch, match=r"junk\.xml \| OpenVINO cannot read it"):
        OpenVinoBackend(str(junk)).open()
    bare = onnx.load(str(models.onnx))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    backend = OpenVinoBackend(str(tmp_path / "bare.onnx"))
    with pytest.raises(InputMismatch, match=r"bare\.onnx \| has no echogen metadata"):
        backend.open()
    assert not backend.is_open
    with pytest.raises(BackendUnavailable, match=r"cannot compile .* for NPU9"):
        OpenVinoBackend(str(models.onnx), ov_device="NPU9").open()


def test_agrees_with_onnx_runtime_and_streams_split_batches(models: SimpleNamespace) -> None:
    feed = _feed(5)
    with registry.open_backend(models.onnx, "onnxrt") as ort_backend:
        want = ort_backend.infer({"mask": feed})["echo"]
    with OpenVinoBackend(str(models.onnx), threads=1) as one:
        got = one.infer({"mask": feed})["echo"]
        assert one.providers[0].startswith("OpenVINO ") and one.providers[0].endswith(" CPU")
    np.testing.assert_allclose(got, want, atol=1e-5)
    with OpenVinoBackend(str(models.ir), streams=2, threads=2) as split:
        # 5 frames over 2 asynchronous requests (3 + 2), joined in order; 1 frame: no split
        np.testing.assert_allclose(split.infer({"mask": feed})["echo"], want, atol=1e-5)
        np.testing.assert_allclose(split.infer({"mask": feed[3:4]})["echo"], want[3:4], atol=1e-5)


def test_uint8_io_model(models: SimpleNamespace) -> None:
    masks = np.stack([labels_mask((SIZE, SIZE), i) for i in range(2)])
    with registry.open_backend(models.fused, "onnxrt") as ort_backend:
        want = ort_backend.infer({"mask": masks})["echo"]
    with registry.open_backend(models.fused, "openvino") as backend:
        assert backend.inputs["mask"].dtype == np.uint8 and backend.meta.io == "uint8"
        got = backend.infer({"mask": masks})["echo"]
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_registry_routes_ir_and_onnx(models: SimpleNamespace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert registry.resolve_kind("m.xml") == "openvino"
    assert registry.resolve_kind("m.onnx", "openvino") == "openvino"  # OpenVINO reads ONNX too
    with pytest.raises(ConfigError, match=r"cannot be served by the onnxrt backend.*openvino"):
        registry.resolve_kind("m.xml", "onnxrt")
    with pytest.raises(ConfigError, match=r"Expected \.xml, \.onnx"):
        registry.resolve_kind("best.pt", "openvino")
    assert isinstance(registry.open_backend(models.ir), OpenVinoBackend)
    assert registry.backend_availability("openvino")[1].startswith("openvino 20")
    assert registry.describe_choice(models.ir).startswith("openvino: openvino ")
    real = registry.has_module
    monkeypatch.setattr(registry, "has_module", lambda name: name != "openvino" and real(name))
    with pytest.raises(BackendUnavailable, match=r"pip install 'echogen-trt\[openvino\]'"):
        registry.open_backend(models.ir)
