"""INT8 export (NNCF -> OpenVINO IR; ONNX Runtime QDQ): metadata, the accuracy gate, the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError
from echogen_trt.export import int8
from echogen_trt.export.verify import Check, VerificationFailed, default_masks
from echogen_trt.runtime.registry import open_backend

SIZE = 64
NEEDS_NNCF = pytest.mark.skipif(
    importlib.util.find_spec("nncf") is None or importlib.util.find_spec("openvino") is None,
    reason="the [int8] extra (nncf, openvino) is not installed",
)


def _masks(n: int, seed: int, anatomy_only: bool = False) -> np.ndarray:
    """Masks with unkept label 2 zeroed (the tiny model keeps 1 and 3): half random labels, half
    anatomy-like, or all anatomy-like (the held-out masks: random labels are no echo view)."""
    n_random = 0 if anatomy_only else n // 2
    masks = default_masks((SIZE, SIZE), n_random=n_random, n_phantom=n - n_random, seed=seed)
    masks[masks == 2] = 0
    return masks


@pytest.fixture(scope="module")
def int8_model(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> int8.Int8Result:
    out = tmp_path_factory.mktemp("int8") / "tiny.int8.xml"
    return int8.export_int8(
        tiny_checkpoint,
        out,
        calibration=_masks(16, seed=5),
        heldout=_masks(6, seed=6, anatomy_only=True),
    )


@NEEDS_NNCF
def test_int8_ir_carries_the_metadata_and_passes_the_gate(
    int8_model: int8.Int8Result, tiny_meta
) -> None:  # type: ignore[no-untyped-def]
    result = int8_model
    assert result.written and not result.forced and result.verify.ok
    assert result.path.is_file() and result.path.with_suffix(".bin").is_file()
    psnr = result.verify.check("PSNR int8 vs fp32 (held-out masks)")
    assert psnr.number is not None and psnr.number >= int8.INT8_MIN_PSNR_DB
    with open_backend(result.path) as backend:  # .xml -> the OpenVINO backend
        meta = backend.meta
        x = _masks(3, seed=7)[:, None].astype(np.float32)
        y = backend.infer({"mask": x})["echo"]
    assert meta.precision == "int8" and meta.experiment == tiny_meta.experiment
    assert meta.kept_labels == (1, 3) and meta.input_size == (SIZE, SIZE)
    assert meta.model_config["width"] == 4 and meta.step == 7
    assert y.shape == (3, 1, SIZE, SIZE) and y.min() >= 0.0 and y.max() <= 1.0
    ops = list(__import__("openvino").Core().read_model(result.path).get_ordered_ops())
    types = {op.get_friendly_name(): op.get_type_name() for op in ops}
    # the recipe keeps the 1-channel tail in FP32: the last transposed conv and the last conv
    assert sorted(types[n] for n in result.ignored) == ["Convolution", "ConvolutionBackpropData"]
    assert "FakeQuantize" in types.values()  # really quantized, not the FP32 graph renamed


@NEEDS_NNCF
def test_a_bad_quantization_is_refused_and_not_written(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Calibrating on empty masks sets every activation range from the biases alone: real masks
    then saturate the INT8 ranges, and the gate must refuse the result."""
    out = tmp_path / "bad.int8.xml"
    empty = np.zeros((8, SIZE, SIZE), np.uint8)
    with pytest.raises(VerificationFailed, match=r"failed the accuracy gate: PSNR int8 vs fp32"):
        int8.export_int8(
            tiny_checkpoint, out, calibration=empty, heldout=_masks(6, seed=6, anatomy_only=True)
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind
    forced = int8.export_int8(
        tiny_checkpoint,
        out,
        calibration=empty,
        heldout=_masks(6, seed=6, anatomy_only=True),
        force=True,
    )
    assert forced.written and forced.forced and not forced.verify.ok
    assert forced.verify.failures()[0].number < int8.INT8_MIN_PSNR_DB
    assert out.is_file() and "--force" in forced.notes[0]


@NEEDS_NNCF
def test_extra_gates_can_refuse(tiny_checkpoint: Path, tmp_path: Path) -> None:
    seen: list[tuple[Path, Path]] = []

    def dice_gate(fp32: Path, candidate: Path) -> Check:
        seen.append((fp32, candidate))
        return Check("Dice drop", "0.05", "<= 0.01", ok=False, number=0.05)

    out = tmp_path / "m.int8.xml"
    with pytest.raises(VerificationFailed, match=r"Dice drop: 0\.05 \(bound <= 0\.01\)"):
        int8.export_int8(
            tiny_checkpoint,
            out,
            calibration=_masks(8, 1),
            heldout=_masks(4, 2, anatomy_only=True),
            gates=[dice_gate],
        )
    assert seen and seen[0][0].suffix == ".onnx" and seen[0][1].suffix == ".xml"
    assert not out.exists()


@NEEDS_NNCF
def test_mask_and_recipe_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no masks to calibrate on.*--calibrate DATA"):
        int8.export_int8(tiny_checkpoint, tmp_path / "m.int8.xml")
    with pytest.raises(ConfigError, match=r"unexpected file name.*\.xml or \.onnx"):
        int8.export_int8(tiny_checkpoint, tmp_path / "m.engine", calibration=_masks(2, 1))
    with pytest.raises(ConfigError, match=r"preset 'fast'"):
        int8.Int8Recipe(preset="fast").check()


@pytest.fixture(scope="module")
def phantom_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from echogen_trt.data.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("camus")
    synthesize_dataset(root, 20, views=("4CH",), with_sequence=False, progress=False, seed=4)
    return root


@NEEDS_NNCF
def test_cli_int8_from_a_camus_tree(
    tiny_checkpoint: Path, phantom_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model.int8.xml"
    args = ["export", str(tiny_checkpoint), "--out", str(out), "--precision", "int8"]
    args.append("--no-dice-gate")  # the judge's training: tests/evaluate/test_dice_gate.py
    result = CliRunner().invoke(cli, [*args, "--calibrate", str(phantom_tree), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # progress bars go to stderr
    assert summary["written"] and summary["precision"] == "int8" and summary["verify"]["ok"]
    assert summary["n_calibration"] > summary["n_heldout"] > 0  # train split vs test split
    assert out.is_file() and Path(summary["bin"]).is_file()
    missing = CliRunner().invoke(cli, args)
    assert isinstance(missing.exception, ConfigError)
    assert "needs --calibrate DATA" in str(missing.exception)
    stray = CliRunner().invoke(
        cli, ["export", str(tiny_checkpoint), "--out", str(tmp_path / "m.onnx"), "--force"]
    )
    assert isinstance(stray.exception, ConfigError)
    assert "only apply to --precision int8" in str(stray.exception)


# -- the ONNX Runtime path (.onnx output): no nncf or openvino needed ---------------------------
def test_conv_transpose_split_is_exact(tiny_onnx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    import onnxruntime as ort

    from echogen_trt.export.ort_int8 import split_conv_transpose

    model, convs = split_conv_transpose(onnx.load(str(tiny_onnx.path)))
    ops = [n.op_type for n in model.graph.node]
    assert "ConvTranspose" not in ops and ops.count("DepthToSpace") == 5 and len(convs) == 20
    onnx.checker.check_model(model, full_check=True)
    x = _masks(4, seed=2)[:, None].astype(np.float32)

    def run(proto: object) -> np.ndarray:
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
        return np.asarray(sess.run(None, {"mask": x})[0])

    np.testing.assert_allclose(run(model), run(onnx.load(str(tiny_onnx.path))), atol=1e-5)


def test_onnx_int8_for_onnx_runtime(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "m.int8.onnx"
    result = int8.export_int8(
        tiny_checkpoint, out, calibration=_masks(16, seed=5),
        heldout=_masks(6, seed=6, anatomy_only=True),
    )  # fmt: skip
    assert result.written and result.verify.ok and result.to_dict()["bin"] is None
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "DepthToSpace"} <= ops
    assert "ConvTranspose" not in ops  # every up-convolution became quantizable Convs
    assert len(result.ignored) == 5  # the last up-convolution's 4 phases + the output conv
    with open_backend(out) as backend:  # .onnx -> ONNX Runtime, metadata carried over
        assert backend.meta.precision == "int8" and backend.meta.kept_labels == (1, 3)
    empty = np.zeros((8, SIZE, SIZE), np.uint8)
    with pytest.raises(VerificationFailed, match=r"failed the accuracy gate"):
        int8.export_int8(
            tiny_checkpoint, tmp_path / "bad.int8.onnx", calibration=empty,
            heldout=_masks(6, seed=6, anatomy_only=True),
        )  # fmt: skip
    assert not (tmp_path / "bad.int8.onnx").exists()


def test_quantizer_failure_is_an_export_error(
    tiny_onnx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime.quantization as ort_quant

    from echogen_trt.errors import ExportError
    from echogen_trt.export.ort_int8 import quantize_onnx

    def fail(*args: object, **kwargs: object) -> None:
        raise ValueError("Too many bins for data range.")

    monkeypatch.setattr(ort_quant, "quantize_static", fail)
    x = _masks(2, seed=1)[:, None].astype(np.float32)
    with pytest.raises(ExportError, match=r"quantizer failed: Too many bins.*--out NAME\.xml"):
        quantize_onnx(tiny_onnx.path, tmp_path / "q.onnx", x)
    assert list(tmp_path.iterdir()) == []  # the rewritten intermediate file is removed


def test_calibration_masks_take_the_runtime_path(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibration batches are made as `generate` makes them: a label the model does not keep
    (2, for the tiny model keeping 1 and 3) is zeroed, not fed to the quantizer as it is."""
    from echogen_trt.export import ort_int8

    class Stop(Exception):
        pass

    seen: list[np.ndarray] = []

    def capture(fp32: Path, out: Path, calibration: np.ndarray) -> list[str]:
        seen.append(calibration)
        raise Stop

    monkeypatch.setattr(ort_int8, "quantize_onnx", capture)
    masks = np.full((2, SIZE, SIZE), 2, np.uint8)
    masks[:, : SIZE // 2] = 1
    with pytest.raises(Stop):
        int8.export_int8(
            tiny_checkpoint, tmp_path / "m.int8.onnx", calibration=masks, heldout=masks
        )
    assert seen[0].shape == (2, 1, SIZE, SIZE) and seen[0].dtype == np.float32
    assert set(np.unique(seen[0])) == {0.0, 1.0}
