"""The judge U-Net: its size, outputs and features; saving and loading it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from echogen_trt.errors import CheckpointError, ConfigError
from echogen_trt.evaluate.segment import (
    SegmenterSettings,
    build_segmenter,
    count_params,
    encoder_features,
    load_segmenter,
    predict_labels,
    save_segmenter,
    train_segmenter,
)


def test_default_judge_is_compact_and_shapes_follow_the_input() -> None:
    model = build_segmenter(SegmenterSettings()).eval()
    assert count_params(model) == 486_436  # "a few million parameters at most"
    x = torch.rand(2, 1, 32, 48)
    assert model(x).shape == (2, 4, 32, 48)
    assert model.features(x).shape == (2, 8 + 16 + 32 + 64 + 128)


def test_sides_not_divisible_by_the_depth_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"segmenter input \| size \(30, 32\)"):
        build_segmenter(SegmenterSettings())(torch.rand(1, 1, 30, 32))
    with pytest.raises(ConfigError, match="Expected positive width"):
        SegmenterSettings(iters=0).check()


def test_saved_judge_loads_with_identical_outputs(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.random((6, 16, 16), dtype=np.float32)
    masks = (images * 4).astype(np.uint8).clip(0, 3)  # labels readable from the grey level
    settings = SegmenterSettings(width=2, depth=2, iters=3, batch_size=2)
    model = train_segmenter(images, masks, settings, seed=1)
    path = save_segmenter(model, settings, tmp_path / "j.pt", {"n_frames": 6})
    loaded, info = load_segmenter(path)
    assert info == {"n_frames": 6}
    assert np.array_equal(predict_labels(loaded, images), predict_labels(model, images))
    assert np.array_equal(encoder_features(loaded, images), encoder_features(model, images))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"segmenter .*bad.pt \| cannot be loaded"):
        load_segmenter(tmp_path / "bad.pt")


def test_augmentation_moves_frame_and_mask_together_and_blurs_some_frames() -> None:
    """Shifts must move the labels with the anatomy (else the judge learns to misplace it), and
    blur must reach some frames (a judge of one texture read LA 0.0 in the issue 24 audit)."""
    import torch

    from echogen_trt.evaluate.segment import SegmenterSettings, _augment

    x = torch.zeros(16, 1, 64, 64)
    y = torch.zeros(16, 64, 64, dtype=torch.int64)
    x[:, :, 20:40, 24:36], y[:, 20:40, 24:36] = 1.0, 1  # a bright square labelled 1
    settings = SegmenterSettings(blur=1.5, shift=0.1)
    ax, ay = _augment(x, y, settings, torch.Generator().manual_seed(0))
    moved = [not torch.equal(m, y[0]) for m in ay]
    assert any(moved)  # some frames were shifted
    for frame, mask in zip(ax[:, 0], ay, strict=True):
        centre = (mask == 1) & (torch.nn.functional.max_pool2d(
            (mask != 1).float()[None], 5, 1, 2)[0] == 0)  # fmt: skip
        assert frame[centre].min() > 0.3  # the square's interior is still under its label
        assert frame[mask == 0].mean() < 0.2
    edges = [float((f[mask == 1] < 0.95 * f[mask == 1].max()).float().mean()) for f, mask in
             zip(ax[:, 0], ay, strict=True)]  # fmt: skip
    assert max(edges) > min(edges)  # blurred frames have soft edges, sharp ones do not
