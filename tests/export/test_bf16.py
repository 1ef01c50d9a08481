"""BF16 export: an OpenVINO IR that runs in bfloat16 only because its metadata says so, written
only after the accuracy gate against FP32."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from echogen_trt.artifacts import openvino_ir
from echogen_trt.errors import ConfigError
from echogen_trt.export import bf16
from echogen_trt.export.verify import Check, VerificationFailed, default_masks
from echogen_trt.runtime.cpu import cpu_flags
from echogen_trt.runtime.registry import open_backend

SIZE = 64
NEEDS_BF16 = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None or not set(bf16.BF16_FLAGS) & cpu_flags(),
    reason="needs openvino and a CPU with avx512_bf16 or amx_bf16",
)


def _heldout() -> np.ndarray:
    masks = default_masks((SIZE, SIZE), n_random=0, n_phantom=4, seed=6)
    masks[masks == 2] = 0  # the tiny model keeps labels 1 and 3
    return masks


def _hint(backend: object) -> str:
    """The precision OpenVINO compiled the model for: "bf16" or "f32"."""
    import openvino as ov

    hint = backend._compiled.get_property("INFERENCE_PRECISION_HINT")  # type: ignore[attr-defined]
    return {ov.Type.bf16: "bf16", ov.Type.f32: "f32"}.get(hint, str(hint))


@NEEDS_BF16
def test_bf16_ir_records_its_precision_and_runs_in_bf16(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    result = bf16.export_bf16(tiny_checkpoint, tmp_path / "m.bf16.xml", heldout=_heldout())
    psnr = result.verify.check("PSNR bf16 vs fp32 (held-out masks)")
    assert result.written and psnr.number is not None and psnr.number >= bf16.BF16_MIN_PSNR_DB
    assert np.isfinite(psnr.number)  # really computed in bf16: FP32 would match exactly
    with open_backend(result.path) as backend:
        assert backend.meta.precision == "bf16" and _hint(backend) == "bf16"
    fp32 = tmp_path / "m.fp32.xml"
    model = openvino_ir.load_model(result.path)
    openvino_ir.save_ir(model, fp32, replace(result.meta, precision="fp32"))
    with open_backend(fp32) as backend:  # same graph, FP32 metadata: never bf16 silently
        assert _hint(backend) == "f32"


@NEEDS_BF16
def test_the_gate_refuses_and_writes_nothing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A bound no BF16 model can meet (200 dB is beyond float32's own noise), and a failing extra
    gate: both refuse, and no file appears."""
    out = tmp_path / "bad.xml"
    with pytest.raises(VerificationFailed, match=r"PSNR bf16 vs fp32"):
        bf16.export_bf16(tiny_checkpoint, out, heldout=_heldout(), min_psnr_db=200.0)

    def dice(fp32: Path, candidate: Path) -> Check:
        return Check("Dice drop vs fp32", "0.2", "<= 0.01", ok=False, number=0.2)

    with pytest.raises(VerificationFailed, match=r"Dice drop"):
        bf16.export_bf16(tiny_checkpoint, out, heldout=_heldout(), gates=[dice])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_cpu_without_bf16_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither avx512_bf16 nor amx_bf16"):
        bf16.export_bf16(tiny_checkpoint, tmp_path / "m.xml", heldout=_heldout(), flags={"avx2"})
    assert not (tmp_path / "m.xml").exists()
