"""Fan metrics: exact values on constructed images, and the fan really excludes the outside."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echogen_trt.errors import InputMismatch
from echogen_trt.metrics import (
    fan_mask,
    fan_metrics,
    fill_holes,
    outside_fan_saturation,
    ssim_map,
)


@pytest.fixture
def real() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((2, 48, 48), np.float32)
    img[:, 8:40, 8:40] = rng.uniform(0.05, 1.0, (2, 32, 32))
    return img


def test_identical_images_are_perfect(real) -> None:
    m = fan_metrics(real, real)
    assert m["l1"] == 0.0 and m["psnr"] == float("inf") and m["ssim"] == pytest.approx(1.0)


def test_constant_offset_gives_exact_l1_and_psnr(real) -> None:
    m = fan_metrics(real + 0.1, real)
    assert m["l1"] == pytest.approx(0.1, rel=1e-5)
    assert m["psnr"] == pytest.approx(20.0, rel=1e-4)  # mse 0.01 -> 20 dB


def test_errors_outside_the_fan_do_not_count(real) -> None:
    pred = real.copy()
    pred[:, :8] = 1.0  # rows outside the sector
    assert fan_metrics(pred, real)["l1"] == 0.0
    assert fan_metrics(pred, real, mask=np.ones_like(real))["l1"] > 0.0


def test_uint8_with_data_range_255_matches_floats(real) -> None:
    noisy = np.clip(real + np.random.default_rng(1).normal(0, 0.1, real.shape), 0, 1)
    r8, p8 = np.round(real * 255).astype(np.uint8), np.round(noisy * 255).astype(np.uint8)
    m8 = fan_metrics(p8, r8, data_range=255)
    mf = fan_metrics(p8 / 255.0, r8 / 255.0)
    assert m8["psnr"] == pytest.approx(mf["psnr"]) and m8["ssim"] == pytest.approx(mf["ssim"])
    assert m8["l1"] == pytest.approx(255 * mf["l1"])


def test_ssim_drops_with_noise_and_is_symmetric(real) -> None:
    rng = np.random.default_rng(2)
    small = real + rng.normal(0, 0.02, real.shape)
    large = real + rng.normal(0, 0.3, real.shape)
    assert fan_metrics(small, real)["ssim"] > fan_metrics(large, real)["ssim"]
    a, b = real[0], large[0]
    assert np.allclose(ssim_map(a, b), ssim_map(b, a))


def test_accepts_nchw_and_single_images(real) -> None:
    batch = fan_metrics(real[:, None] * 0.5, real[:, None])
    singles = [fan_metrics(real[i] * 0.5, real[i]) for i in range(2)]
    assert batch["l1"] == pytest.approx(np.mean([s["l1"] for s in singles]))


def test_bad_inputs_raise(real) -> None:
    with pytest.raises(InputMismatch, match=r"pred \| shape .* differs from real"):
        fan_metrics(real[:1], real)
    with pytest.raises(InputMismatch, match=r"image\(s\) \[1\] have an empty fan"):
        fan_mask(np.stack([real[0], np.zeros_like(real[0])]))
    with pytest.raises(InputMismatch, match=r"pred \| shape \(48,\) not supported"):
        fan_metrics(real[0, 0], real[0, 0])


def test_outside_fan_saturation_counts_bright_background_only(real) -> None:
    pred = real.copy()
    assert outside_fan_saturation(pred, real) == 0.0
    n_out = real[0].size - 32 * 32
    pred[:, 0, :10] = 0.95  # 10 bright background pixels per image
    pred[:, 1, :10] = 0.85  # below the 0.9 level: not saturated
    assert outside_fan_saturation(pred, real) == pytest.approx(10 / n_out)


def test_outside_fan_saturation_ignores_dark_holes_inside_the_fan(real) -> None:
    holed = real.copy()
    holed[:, 20:24, 20:24] = 0.0  # a black pixel inside the sector is not background
    pred = holed.copy()
    pred[:, 20:24, 20:24] = 1.0
    assert outside_fan_saturation(pred, holed) == 0.0
    assert outside_fan_saturation(pred * 255, holed * 255, data_range=255.0) == 0.0


def test_fill_holes_fills_enclosed_background_only() -> None:
    region = np.zeros((7, 12), bool)
    region[1:6, 1:6] = True
    region[2:5, 2:5] = False  # a closed ring's hole: filled
    region[1:6, 7:11] = True
    region[2:5, 8:10] = False
    region[2:6, 8:10] = False  # a "U" open to the bottom border: stays background
    filled = fill_holes(region)
    assert filled[1:6, 1:6].all() and not filled[2:6, 8:10].any()
    assert np.array_equal(filled & ~region, np.pad(np.ones((3, 3), bool), ((2, 2), (2, 7))))
    diagonal = np.ones((3, 3), bool)
    diagonal[1, 1] = False
    diagonal[0, 0] = False  # touches the hole only at a corner: 4-connectivity fills the hole
    assert fill_holes(diagonal)[1, 1]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.2, 0.8))
def test_fill_holes_matches_scipy(seed: int, density: float) -> None:
    """scipy.ndimage.binary_fill_holes was the implementation; its result is the contract."""
    ndimage = pytest.importorskip("scipy.ndimage")
    region = np.random.default_rng(seed).random((17, 23)) < density
    assert np.array_equal(fill_holes(region), ndimage.binary_fill_holes(region))
