"""verify_onnx: every check passes on a good export and fails, with its number, on a bad one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from echogen_trt.artifacts.onnx_file import load_model, read_meta, write_meta
from echogen_trt.errors import ExportError, InputMismatch
from echogen_trt.export.export_result import ExportResult
from echogen_trt.export.verify import (
    FP16_MIN_PSNR_DB,
    VerificationFailed,
    default_masks,
    verify_onnx,
)
from echogen_trt.metrics import psnr_db


def tampered_copy(result: ExportResult, path: Path, delta: float = 0.05) -> Path:
    """The export with one Conv weight nudged: the graph is valid, the numbers are not."""
    model = onnx.load(str(result.path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    array = numpy_helper.to_array(weight).copy()
    array.flat[0] += delta
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    onnx.save(model, str(path))
    return path


def test_good_fp32_export_passes_every_check(
    tiny_onnx: ExportResult, tiny_generator: Any, tiny_masks: np.ndarray
) -> None:
    report = verify_onnx(tiny_onnx.path, reference=tiny_generator, masks=tiny_masks)
    names = [c.name for c in report.checks]
    assert names == [
        "onnx checker",
        "ops unsupported by TensorRT",
        "inputs/outputs",
        "output range",
        "batch 1 vs batch 4",
        "max abs err vs torch",
    ]
    assert report.ok and report.n_masks == 4 and report.batch is None
    assert report.check("max abs err vs torch").number <= 1e-4  # type: ignore[operator]
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_fp16_psnr_is_measured_against_torch(
    tiny_onnx_fp16: ExportResult, tiny_generator: Any, tiny_masks: np.ndarray
) -> None:
    report = verify_onnx(tiny_onnx_fp16.path, reference=tiny_generator, masks=tiny_masks)
    psnr = report.check("PSNR fp16 vs torch fp32")
    assert psnr.ok and psnr.number is not None and FP16_MIN_PSNR_DB <= psnr.number < 200
    # the same number a caller gets by hand from ORT and torch
    import onnxruntime as ort
    import torch

    from echogen_trt.artifacts.labels import select_labels

    x = select_labels(tiny_masks, (1, 3))[:, None].astype(np.float32)
    session = ort.InferenceSession(str(tiny_onnx_fp16.path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = tiny_generator(torch.from_numpy(x)).numpy()
    assert psnr.number == pytest.approx(psnr_db(session.run(None, {"mask": x})[0], ref))


def test_tampered_weights_fail_with_the_error_value(
    tiny_onnx: ExportResult, tiny_generator: Any, tmp_path: Path
) -> None:
    path = tampered_copy(tiny_onnx, tmp_path / "bad.onnx")
    with pytest.raises(VerificationFailed, match=r"failed verification: max abs err vs torch: "):
        verify_onnx(path, reference=tiny_generator)
    report = verify_onnx(path, reference=tiny_generator, raise_on_failure=False)
    err = report.check("max abs err vs torch")
    assert not report.ok and not err.ok and err.number is not None and err.number > 1e-4
    assert [c.name for c in report.failures()] == ["max abs err vs torch"]


def test_fixed_batch_file_is_run_in_chunks(
    tiny_onnx_fixed: ExportResult, tiny_generator: Any
) -> None:
    masks = default_masks((64, 64), n_random=2, n_phantom=1)  # 3 masks, batch 2: one padded
    report = verify_onnx(tiny_onnx_fixed.path, reference=tiny_generator, masks=masks)
    assert report.ok and report.batch == 2 and report.n_masks == 3
    assert "batch 1 vs batch 3" not in [c.name for c in report.checks]  # fixed: not applicable


def test_fused_export_is_compared_in_counts(
    tiny_onnx_fused: ExportResult, tiny_generator: Any
) -> None:
    report = verify_onnx(tiny_onnx_fused.path, reference=tiny_generator)
    diff = report.check("max abs diff vs torch (counts)")
    assert report.ok and diff.number is not None and diff.number <= 1
    assert report.check("output dtype").value == "uint8"


def test_without_reference_the_comparison_is_skipped(tiny_onnx: ExportResult) -> None:
    report = verify_onnx(tiny_onnx.path)
    assert report.ok
    assert report.check("torch reference").value.startswith("none given")
    assert "max abs err vs torch" not in [c.name for c in report.checks]


def test_io_that_contradicts_the_metadata_fails(tiny_onnx: ExportResult, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx.path))
    write_meta(model, replace(read_meta(model), io="uint8"))
    onnx.save(model, str(tmp_path / "liar.onnx"))
    with pytest.raises(
        VerificationFailed, match=r"inputs/outputs: mask float32\[batch,1,64,64\]"
    ) as info:
        verify_onnx(tmp_path / "liar.onnx")
    assert "output range" not in [c.name for c in info.value.report.checks]  # not run


def test_unsupported_op_fails_the_op_check(tiny_meta: Any, tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, 64, 64])
    y = helper.make_tensor_value_info("echo", TensorProto.FLOAT, ["batch", 1, 64, 64])
    node = helper.make_node("Gelu", ["mask"], ["echo"], domain="com.microsoft")
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    write_meta(model, tiny_meta)
    onnx.save(model, str(tmp_path / "custom.onnx"))
    with pytest.raises(
        VerificationFailed, match=r"ops unsupported by TensorRT: com\.microsoft::Gelu"
    ):
        verify_onnx(tmp_path / "custom.onnx")


def test_files_that_are_not_exports_raise(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not found"):
        verify_onnx(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\xffnot a model" * 10)
    with pytest.raises(ExportError, match="cannot be parsed"):
        load_model(tmp_path / "junk.onnx")
    x = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1])
    onnx.save(helper.make_model(helper.make_graph([], "g", [x], [x])), str(tmp_path / "bare.onnx"))
    with pytest.raises(InputMismatch, match=r"bare\.onnx \| has no echogen metadata"):
        verify_onnx(tmp_path / "bare.onnx")


def test_default_masks_hold_every_label_reproducibly() -> None:
    masks = default_masks((64, 48), n_random=1, n_phantom=2, seed=5)
    assert masks.shape == (3, 64, 48) and masks.dtype == np.uint8
    assert set(np.unique(masks[0])) == {0, 1, 2, 3}
    for phantom in masks[1:]:
        assert set(np.unique(phantom)) == {0, 1, 2, 3}
        assert (phantom == 1).sum() > 100  # an LV, not a speck
    np.testing.assert_array_equal(masks, default_masks((64, 48), 1, 2, seed=5))
    assert not np.array_equal(masks, default_masks((64, 48), 1, 2, seed=6))
