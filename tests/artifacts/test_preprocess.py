"""Resizing never invents labels, matches the reference's filter, and scales frames to [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from echogen_trt.artifacts.labels import EXPERIMENTS, select_labels
from echogen_trt.artifacts.preprocess import (
    check_mask_values,
    image_to_unit,
    resize_image,
    resize_mask,
)
from echogen_trt.errors import ConfigError, DataError

masks = arrays(
    np.uint8,
    st.tuples(st.integers(1, 40), st.integers(1, 40)),
    elements=st.integers(0, 3),
)
sizes = st.tuples(st.integers(1, 48), st.integers(1, 48))


@settings(max_examples=60, deadline=None)
@given(mask=masks, size=sizes)
def test_resized_mask_only_holds_input_values(mask: np.ndarray, size: tuple[int, int]) -> None:
    out = resize_mask(mask, size)
    assert out.shape == size and out.dtype == np.uint8
    assert set(np.unique(out)) <= set(np.unique(mask))


@settings(max_examples=40, deadline=None)
@given(mask=masks)
def test_resize_to_own_size_is_identity(mask: np.ndarray) -> None:
    out = resize_mask(mask, mask.shape)
    np.testing.assert_array_equal(out, mask)
    assert out is not mask  # a copy: callers may modify it


@settings(max_examples=60, deadline=None)
@given(mask=masks, size=sizes, experiment=st.sampled_from(sorted(EXPERIMENTS)))
def test_select_labels_and_resize_commute(mask, size, experiment: str) -> None:
    kept = EXPERIMENTS[experiment]
    np.testing.assert_array_equal(
        resize_mask(select_labels(mask, kept), size), select_labels(resize_mask(mask, size), kept)
    )


@pytest.mark.parametrize(
    ("src", "dst"), [((60, 80), (256, 256)), ((549, 778), (256, 256)), ((37, 23), (64, 50))]
)
def test_nearest_matches_pillow_nearest(src, dst) -> None:
    """The reference resized with Pillow < 7's default filter, NEAREST."""
    mask = np.random.default_rng(1).integers(0, 4, src, dtype=np.uint8)
    want = np.asarray(Image.fromarray(mask).resize(dst[::-1], Image.NEAREST))
    np.testing.assert_array_equal(resize_mask(mask, dst), want)
    np.testing.assert_array_equal(resize_image(mask * 60, dst), want * 60)


def test_resize_image_interpolations() -> None:
    image = np.tile(np.array([[0, 200]], np.uint8), (4, 2))  # (4, 4): 0, 200, 0, 200 columns
    assert set(np.unique(resize_image(image, (2, 2), "area"))) == {100}
    linear = resize_image(image, (8, 8), "linear")
    assert linear.shape == (8, 8) and len(np.unique(linear)) > 2
    with pytest.raises(ConfigError, match="interpolation 'cubic' \\| unknown"):
        resize_image(image, (2, 2), "cubic")


def test_image_to_unit() -> None:
    out = image_to_unit(np.array([[0, 51, 255]], np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]], rtol=0, atol=1e-7)
    with pytest.raises(DataError, match=r"dtype float32\. Expected uint8"):
        image_to_unit(out)


def test_check_mask_values_lists_bad_values() -> None:
    check_mask_values(np.array([[0, 1, 2, 3]], np.uint8), "ok")
    with pytest.raises(DataError, match=r"patient0009 \| mask values \[5, 255\] outside 0..3"):
        check_mask_values(np.array([[0, 5, 255, 3]], np.uint8), "patient0009")


@pytest.mark.parametrize("size", [(0, 4), (4,), (4.0, 4), (True, 2)])
def test_bad_sizes(size) -> None:
    with pytest.raises(ConfigError, match="Expected \\(H, W\\), two positive integers"):
        resize_mask(np.zeros((3, 3), np.uint8), size)


def test_bad_arrays() -> None:
    with pytest.raises(DataError, match=r"mask \| shape \(2, 3, 3\)"):
        resize_mask(np.zeros((2, 3, 3), np.uint8), (4, 4))
