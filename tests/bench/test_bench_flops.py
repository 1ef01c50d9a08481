"""FLOPs per frame: the ONNX conv count, the model_config formula and the reference's 17.2 GFLOP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from echogen_trt.bench.flops import flops_from_config, flops_from_onnx
from echogen_trt.errors import ConfigError, InputMismatch

REFERENCE_GFLOP = 17.2  # docs/reference.md: 8.59 GMAC per 256x256 frame at width 64


def test_reference_generator_is_17_2_gflop() -> None:
    gflop = flops_from_config({"width": 64, "image_size": 256}) / 1e9
    assert gflop == pytest.approx(REFERENCE_GFLOP, rel=0.01)
    assert gflop / 2 == pytest.approx(8.59, rel=0.005)  # GMAC, to the reference's 3 digits


def test_onnx_count_matches_the_formula(bench_models: Path, wide8_onnx: Path) -> None:
    assert flops_from_onnx(bench_models / "tiny.onnx") == flops_from_config(
        {"width": 4, "image_size": 64}
    )
    assert flops_from_onnx(wide8_onnx) == flops_from_config({"width": 8, "image_size": 256})


def test_width_scaling_is_quadratic_in_the_body(wide8_onnx: Path) -> None:
    # conv FLOPs grow with width^2, except the 1-channel first conv and last transposed conv
    # (linear in width) and the 1->1 output conv (constant): f(w) = a*w^2 + b*w + c.
    c = 2.0 * 256 * 256 * 16  # out conv: 1 channel in, 1 out, 4x4, at 256x256
    b = 2.0 * (128 * 128 * 16) * 2  # d1 (1 -> w at 128) and u7 (w -> 1 from 128), per unit width
    a = (flops_from_onnx(wide8_onnx) - b * 8 - c) / 8**2
    assert (a * 64**2 + b * 64 + c) / 1e9 == pytest.approx(REFERENCE_GFLOP, rel=0.01)
    assert a * 64**2 + b * 64 + c == flops_from_config({"width": 64, "image_size": 256})


def test_fp16_and_fixed_batch_graphs_count_the_same(bench_models: Path) -> None:
    fp32 = flops_from_onnx(bench_models / "tiny.onnx")
    assert flops_from_onnx(bench_models / "tiny.fp16.onnx") == fp32
    assert flops_from_onnx(bench_models / "tiny.b1.onnx") == fp32  # per frame, not per batch


def test_formula_counts_skip_channels(tmp_path: Path, export_model: Callable[..., Path]) -> None:
    path = export_model(tmp_path / "unet.onnx", width=4, image_size=32, skips=True)
    skips = flops_from_config({"width": 4, "image_size": 32, "skips": True})
    plain = flops_from_config({"width": 4, "image_size": 32})
    assert flops_from_onnx(path) == skips
    assert plain < skips < 2 * plain  # the decoder reads twice the channels, the encoder not


def test_formula_rejects_unknown_sizes() -> None:
    with pytest.raises(ConfigError, match="power-of-two image_size"):
        flops_from_config({"width": 4, "image_size": 100})
    with pytest.raises(ConfigError, match="arch"):
        flops_from_config({"arch": "resnet", "width": 4, "image_size": 64})


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(InputMismatch, match="cannot be read as ONNX"):
        flops_from_onnx(bad)
