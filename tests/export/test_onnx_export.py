"""export_onnx and the FP16 conversion: the graph TensorRT gets, numerically and structurally."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from echogen_trt.artifacts import onnx_file
from echogen_trt.artifacts.labels import select_labels
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import read_meta
from echogen_trt.errors import ConfigError, ExportError, OutputError
from echogen_trt.export import onnx_export
from echogen_trt.export.export_result import ExportResult
from echogen_trt.export.fp16 import convert_file_fp16
from echogen_trt.export.onnx_export import export_checkpoint, export_onnx, fp16_path_for
from echogen_trt.export.ops import unsupported_ops
from echogen_trt.export.verify import FP16_MIN_PSNR_DB, verify_onnx
from echogen_trt.metrics import psnr_db
from echogen_trt.train.checkpoint import file_sha256

REFERENCE_OPS = {"Conv", "ConvTranspose", "BatchNormalization", "LeakyRelu", "Relu", "Sigmoid"}


def run_ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"mask": x})[0])


def torch_out(generator: Any, masks: np.ndarray, kept: tuple[int, ...]) -> np.ndarray:
    x = torch.from_numpy(select_labels(masks, kept)[:, None].astype(np.float32))
    with torch.no_grad():
        return np.asarray(generator(x).numpy())


def float_input(masks: np.ndarray, kept: tuple[int, ...]) -> np.ndarray:
    return select_labels(masks, kept)[:, None].astype(np.float32)


def test_fp32_matches_torch_with_dynamic_batch(
    tiny_onnx: ExportResult, tiny_generator: Any, tiny_masks: np.ndarray
) -> None:
    kept = tiny_onnx.meta.kept_labels
    for n in (1, 3):
        y = run_ort(tiny_onnx.path, float_input(tiny_masks[:n], kept))
        ref = torch_out(tiny_generator, tiny_masks[:n], kept)
        assert y.shape == (n, 1, 64, 64)
        assert np.abs(y - ref).max() <= 1e-4
    assert ref.std() > 0.05  # a calibrated net: the comparison is not between two constants


def test_graph_is_opset17_reference_ops_with_symbolic_batch(tiny_onnx: ExportResult) -> None:
    model = onnx.load(str(tiny_onnx.path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert {n.op_type for n in model.graph.node} <= REFERENCE_OPS
    assert unsupported_ops(model) == []
    # BN after Conv is folded; only the decoder's BN (after ReLU) remains: 4 at 64x64
    assert tiny_onnx.op_counts["BatchNormalization"] == 4
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("mask", "echo")
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [1, 64, 64]
    onnx.checker.check_model(model, full_check=True)


def test_fixed_batch_runs_its_batch_and_rejects_another(
    tiny_onnx_fixed: ExportResult, tiny_masks: np.ndarray
) -> None:
    kept = tiny_onnx_fixed.meta.kept_labels
    assert tiny_onnx_fixed.batch == 2
    assert run_ort(tiny_onnx_fixed.path, float_input(tiny_masks[:2], kept)).shape == (2, 1, 64, 64)
    with pytest.raises(Exception, match=r"(?i)invalid dimensions"):
        run_ort(tiny_onnx_fixed.path, float_input(tiny_masks[:3], kept))


def test_metadata_round_trips(tiny_onnx: ExportResult, tiny_meta: ModelMeta) -> None:
    model = onnx.load(str(tiny_onnx.path))
    props = {p.key: p.value for p in model.metadata_props}
    meta = ModelMeta.from_props(props)
    assert meta == replace(tiny_meta, precision="fp32", io="float")
    assert read_meta(tiny_onnx.path) == meta == tiny_onnx.meta
    assert model.producer_name == "echogen-trt"


def test_fp16_file_has_fp32_io_fp16_weights_and_meets_psnr(
    tiny_onnx_fp16: ExportResult,
    tiny_onnx: ExportResult,
    tiny_generator: Any,
    tiny_masks: np.ndarray,
) -> None:
    model = onnx.load(str(tiny_onnx_fp16.path))
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    io_types = [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]
    assert io_types == [onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT]
    weights = [t for t in model.graph.initializer if t.data_type in float_types]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert read_meta(model).precision == "fp16"
    kept = tiny_onnx_fp16.meta.kept_labels
    y = run_ort(tiny_onnx_fp16.path, float_input(tiny_masks, kept))
    ref = torch_out(tiny_generator, tiny_masks, kept)
    assert y.dtype == np.float32
    assert np.abs(y - ref).max() > 0  # really computed in FP16
    assert psnr_db(y, ref) >= FP16_MIN_PSNR_DB
    assert tiny_onnx_fp16.size_bytes < 0.6 * tiny_onnx.size_bytes


def test_fused_io_zeroes_unkept_labels_inside_the_graph(
    tiny_onnx_fused: ExportResult, tiny_onnx: ExportResult, tiny_masks: np.ndarray
) -> None:
    assert tiny_onnx_fused.meta.io == "uint8"
    raw = tiny_masks.copy()
    raw[:, :8, :8] = 7  # out-of-range values are "not kept" too
    assert {2, 7} <= set(np.unique(raw))  # label 2 is not kept by ventricle_atrium
    y_raw = run_ort(tiny_onnx_fused.path, raw)
    y_sel = run_ort(tiny_onnx_fused.path, select_labels(raw, (1, 3)))
    assert y_raw.dtype == np.uint8 and y_raw.shape == (4, 64, 64)
    np.testing.assert_array_equal(y_raw, y_sel)
    y_float = run_ort(tiny_onnx.path, float_input(raw, (1, 3)))[:, 0]
    expected = np.round(np.clip(y_float * 255.0, 0, 255))
    assert np.abs(y_raw.astype(np.int32) - expected).max() <= 1
    assert len(np.unique(y_raw)) > 20  # the output spans many grey levels


def test_fused_graph_converts_to_fp16(
    tiny_onnx_fused: ExportResult, tiny_generator: Any, tmp_path: Path
) -> None:
    result = convert_file_fp16(tiny_onnx_fused.path, tmp_path / "u8.fp16.onnx")
    model = onnx.load(str(result.path))
    io_types = [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]
    assert io_types == [onnx.TensorProto.UINT8, onnx.TensorProto.UINT8]
    assert (result.meta.precision, result.meta.io) == ("fp16", "uint8")
    report = verify_onnx(result.path, reference=tiny_generator)  # raises on any failed check
    assert report.check("PSNR fp16 vs torch fp32").number >= FP16_MIN_PSNR_DB  # type: ignore[operator]


def test_opset_18_is_kept_and_the_callers_model_untouched(
    tiny_generator: Any, tiny_meta: ModelMeta, tmp_path: Path
) -> None:
    training = copy.deepcopy(tiny_generator).train()  # e.g. exported mid-training
    result = export_onnx(training, tmp_path / "o18.onnx", meta=tiny_meta, opset=18)
    model = onnx.load(str(result.path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert training.training  # export worked on a copy in eval mode
    assert verify_onnx(result.path, reference=tiny_generator).ok  # eval-mode BN was exported


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"precision": "int8"}, ConfigError, "precision .* Expected one of: fp32, fp16"),
        ({"opset": 9}, ConfigError, "opset .* 9 is not supported"),
        ({"batch": 0}, ConfigError, "batch .* must be >= 1"),
    ],
)
def test_bad_options_raise(
    tiny_generator: Any, tiny_meta: ModelMeta, tmp_path: Path,
    options: dict[str, Any], error: type[Exception], match: str,
) -> None:  # fmt: skip
    with pytest.raises(error, match=match):
        export_onnx(tiny_generator, tmp_path / "x.onnx", meta=tiny_meta, **options)
    assert not (tmp_path / "x.onnx").exists()


def test_meta_size_must_match_generator(
    tiny_generator: Any, tiny_meta: ModelMeta, tmp_path: Path
) -> None:
    meta = replace(tiny_meta, input_size=(256, 256))
    with pytest.raises(ExportError, match=r"image_size is 64, but meta.input_size is \(256, 256\)"):
        export_onnx(tiny_generator, tmp_path / "x.onnx", meta=meta)


def test_failed_write_leaves_old_file_and_no_temp(
    tiny_onnx: ExportResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(onnx_file.os, "replace", broken_replace)
    with pytest.raises(OutputError, match=r"model\.onnx \| cannot be written \(disk full\)"):
        onnx_file.save_model(onnx.load(str(tiny_onnx.path)), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_fp16_conversion_refuses_an_fp16_file(tiny_onnx_fp16: ExportResult, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"is already fp16\. Expected an FP32 export"):
        convert_file_fp16(tiny_onnx_fp16.path, tmp_path / "again.onnx")


def test_export_checkpoint_both_records_provenance(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    results = export_checkpoint(tiny_checkpoint, out, precision="both", batch=3)
    assert (
        [r.path for r in results]
        == [out, fp16_path_for(out)]
        == [out, tmp_path / "model.fp16.onnx"]
    )
    for result, precision in zip(results, ("fp32", "fp16"), strict=True):
        meta = read_meta(result.path)
        assert meta.precision == precision and result.batch == 3
        assert (meta.experiment, meta.kept_labels, meta.step) == ("ventricle_atrium", (1, 3), 7)
        assert meta.checkpoint_sha256 == file_sha256(tiny_checkpoint)
        assert meta.model_config["width"] == 4 and meta.input_size == (64, 64)
        assert meta.recipe == {"output_bias": "zero"}  # no training config: the reference's
        assert meta.model_config["out_bias"] == 0.0
        assert result.verify is not None and result.verify.ok


def test_missing_onnxscript_is_a_user_error(
    tiny_generator: Any, tiny_meta: ModelMeta, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = onnx_export.importlib.util.find_spec
    monkeypatch.setattr(
        onnx_export.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a),
    )
    with pytest.raises(ExportError, match=r"onnxscript \| not installed.*pip install"):
        export_onnx(tiny_generator, tmp_path / "x.onnx", meta=tiny_meta)
