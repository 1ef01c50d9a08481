"""Pre/post-processing from ModelMeta: nearest resize, label selection, batches, rounding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_helpers import labels_mask

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import InputMismatch
from echogen_trt.runtime import model_tensors
from echogen_trt.runtime.backends.base import pad_batch

FLOAT = ModelMeta("ventricle_atrium", (1, 3), (32, 48), io="float")
UINT8 = ModelMeta("ventricle_atrium", (1, 3), (32, 48), io="uint8")


@settings(max_examples=25, deadline=None)
@given(h=st.integers(5, 300), w=st.integers(5, 300), seed=st.integers(0, 9))
def test_resize_never_invents_labels(h: int, w: int, seed: int) -> None:
    mask = labels_mask((h, w), seed)
    out = model_tensors.resize_mask(mask, (32, 48))
    assert out.shape == (32, 48) and out.dtype == np.uint8
    assert set(np.unique(out)) <= set(np.unique(mask))


def test_prepare_float_selects_kept_labels() -> None:
    mask = labels_mask((64, 96))
    out = model_tensors.prepare_mask(mask, FLOAT)
    assert out.dtype == np.float32 and out.shape == (32, 48)
    assert set(np.unique(out)) == {0.0, 1.0, 3.0}  # label 2 zeroed, values stay raw
    small = model_tensors.resize_mask(mask, (32, 48))
    np.testing.assert_array_equal(out == 3, small == 3)


def test_prepare_uint8_keeps_raw_labels() -> None:
    mask = labels_mask((64, 96))
    out = model_tensors.prepare_mask(mask, UINT8)
    assert out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 1, 2, 3}  # the graph selects


def test_unknown_io_kind() -> None:
    meta = ModelMeta("ventricle", (1,), (8, 8), io="int4")
    with pytest.raises(InputMismatch, match=r"model io 'int4' \| unknown"):
        model_tensors.prepare_mask(np.zeros((8, 8), np.uint8), meta)


def test_pack_batch_shapes_and_padding() -> None:
    items = [model_tensors.prepare_mask(labels_mask((40, 40), i), FLOAT) for i in range(3)]
    batch = pad_batch(model_tensors.pack_batch(items, FLOAT), 5)
    assert batch.shape == (5, 1, 32, 48) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[2, 0], items[2])
    assert not batch[3:].any()
    raw = [model_tensors.prepare_mask(labels_mask((40, 40)), UINT8)]
    assert model_tensors.pack_batch(raw, UINT8).shape == (1, 32, 48)


def test_frames_from_float_output_round_and_clip() -> None:
    y = np.array([-0.5, 0.0, 0.5 / 255, 1.49 / 255, 0.5, 1.0, 1.7], np.float32)
    frames = model_tensors.frames_from_output(y.reshape(1, 1, 1, -1), FLOAT)
    assert frames.dtype == np.uint8 and frames.shape == (1, 1, 7)
    np.testing.assert_array_equal(frames[0, 0], [0, 0, 0, 1, 128, 255, 255])


def test_frames_from_uint8_output_pass_through() -> None:
    y = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    assert model_tensors.frames_from_output(y, UINT8) is y
    with pytest.raises(InputMismatch, match=r"output 'echo' \| shape \(12,\)"):
        model_tensors.frames_from_output(y.ravel(), UINT8)


def test_restore_size_is_bilinear() -> None:
    frame = np.array([[0, 255]], np.uint8).repeat(2, axis=0)
    out = model_tensors.restore_size(frame, (2, 8))
    assert out.shape == (2, 8)
    assert 0 < out[0, 3] < 255  # interpolated, not nearest
    assert model_tensors.restore_size(frame, (2, 2)) is frame


def test_served_masks_are_resized_exactly_like_training_masks() -> None:
    """Runtime and training must pick the same source pixels (Pillow-NEAREST equivalent);
    cv2.INTER_NEAREST would shift edges by a pixel for non-integer scale factors."""
    from echogen_trt.artifacts.preprocess import resize_mask as training_resize

    rng = np.random.default_rng(3)
    mask = rng.integers(0, 4, size=(97, 71), dtype=np.uint8)
    for size in ((64, 64), (256, 256), (40, 90)):
        np.testing.assert_array_equal(
            model_tensors.resize_mask(mask, size), training_resize(mask, size)
        )
