"""The Python API: `MaskToEcho(model).generate(masks)` on float, uint8-fused and static models."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from runtime_helpers import SIZE, labels_mask

from echogen_trt.errors import ConfigError, InputMismatch
from echogen_trt.runtime import MaskToEcho


def _masks(n: int = 5) -> list[np.ndarray]:
    shapes = [(64, 64), (80, 100), (120, 90), (50, 70), (200, 160), (64, 32)]
    return [labels_mask(shapes[i % len(shapes)], i) for i in range(n)]


def test_generate_shapes_and_forms(models: SimpleNamespace) -> None:
    masks = _masks(5)
    with MaskToEcho(models.onnx) as gen:
        frames = gen.generate(masks)
        assert frames.shape == (5, SIZE, SIZE) and frames.dtype == np.uint8
        assert gen.input_size == (SIZE, SIZE)
        np.testing.assert_array_equal(gen.generate(masks[1]), frames[1:2])  # one (H, W) mask
        same = np.stack([labels_mask((SIZE, SIZE), i) for i in range(3)])
        np.testing.assert_array_equal(gen.generate(same), gen.generate(list(same)))
        assert gen.generate([]).shape == (0, SIZE, SIZE)
        assert len({f.tobytes() for f in frames}) == 5  # different masks, different frames
    assert not gen.backend.is_open


def test_batch_size_does_not_change_frames(models: SimpleNamespace) -> None:
    masks = _masks(5)
    with (
        MaskToEcho(models.onnx, batch_size=1) as one,
        MaskToEcho(models.onnx, batch_size=4) as four,
    ):
        np.testing.assert_array_equal(one.generate(masks), four.generate(masks))
        assert four.frames == 5 and four.compute_ms > 0


def test_static_batch_model_pads_the_last_chunk(models: SimpleNamespace) -> None:
    masks = _masks(5)  # 2 + 2 + 1 (padded)
    with MaskToEcho(models.static2, batch_size=8) as fixed, MaskToEcho(models.onnx) as dynamic:
        np.testing.assert_array_equal(fixed.generate(masks), dynamic.generate(masks))


def test_fused_uint8_model_matches_float_model(models: SimpleNamespace) -> None:
    masks = _masks(6)
    with MaskToEcho(models.fused) as fused, MaskToEcho(models.onnx) as plain:
        assert fused.meta.io == "uint8"
        a, b = fused.generate(masks), plain.generate(masks)
    assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.parametrize("which", ["onnx", "fused", "ckpt"])
def test_unkept_labels_are_ignored(models: SimpleNamespace, which: str) -> None:
    if which == "ckpt":
        pytest.importorskip("torch")
    mask = labels_mask((SIZE, SIZE), 1)
    assert (mask == 2).any()
    without = np.where(mask == 2, 0, mask).astype(np.uint8)  # ventricle_atrium keeps 1 and 3
    only_lv = np.where(mask == 3, 0, mask).astype(np.uint8)
    with MaskToEcho(getattr(models, which)) as gen:
        frames = gen.generate([mask, without, only_lv])
    np.testing.assert_array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])  # label 3 matters


def test_scaled_masks_give_the_same_frames(models: SimpleNamespace) -> None:
    masks = _masks(3)
    with MaskToEcho(models.onnx) as gen:
        np.testing.assert_array_equal(gen.generate(masks), gen.generate([m * 85 for m in masks]))


def test_bad_masks(models: SimpleNamespace) -> None:
    bad = labels_mask((40, 40))
    bad[0, 0] = 9
    with MaskToEcho(models.onnx) as gen:
        with pytest.raises(InputMismatch, match=r"mask 1 \| mask values \{0, 1, 2, 3, 9\}"):
            gen.generate([labels_mask((40, 40)), bad])
        with pytest.raises(InputMismatch, match=r"masks \| array of shape \(2, 3, 4, 5\)"):
            gen.generate(np.zeros((2, 3, 4, 5), np.uint8))
        with pytest.raises(InputMismatch, match=r"masks \| item 0 has shape \(4,\)"):
            gen.generate([np.zeros(4, np.uint8)])


def test_constructor_errors(tmp_path: Path, models: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match=r"batch_size \| 0"):
        MaskToEcho(models.onnx, batch_size=0)
    with pytest.raises(ConfigError, match=r"nope\.onnx \| not found"):
        MaskToEcho(tmp_path / "nope.onnx")


def test_opens_lazily_without_with(models: SimpleNamespace) -> None:
    gen = MaskToEcho(models.onnx)
    assert not gen.backend.is_open
    try:
        assert gen.generate(_masks(1)).shape == (1, SIZE, SIZE)
        assert gen.backend.is_open
    finally:
        gen.close()
