"""Shared test helpers: small, asymmetric CAMUS-like records built from plain numpy arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from echogen_trt.data.records import ViewRecord


def asymmetric_image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """uint8 (H, W) whose every transpose, flip or rotation differs: catches orientation bugs."""
    rows, cols = np.indices(shape)
    image = (rows * 3 + cols * 7 + rows * cols // 5 + seed * 11) % 200 + 20
    image[:5, : shape[1] // 4] = 255  # a bright block near the top-left (the "apex" side)
    return image.astype(np.uint8)


def labelled_mask(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """uint8 (H, W) holding labels 0..3 in distinct, off-centre blocks."""
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    s = seed % 3
    mask[h // 6 + s : h // 2, w // 5 : w // 2] = 1  # LV, upper left
    mask[h // 6 + s : h // 2, w // 2 : w // 2 + 4] = 2  # myocardium strip
    mask[h // 2 + 2 : h - 5, w // 4 : w // 2 + s] = 3  # LA, below
    return mask


def make_record(
    patient: str = "patient0001",
    shape: tuple[int, int] = (60, 80),
    seed: int = 0,
    spacing: tuple[float, float] = (0.25, 0.4),
    frames: int = 3,
) -> ViewRecord:
    """A complete 4CH record: ED/ES images and masks, a sequence with masks and Info fields."""
    ed, es = asymmetric_image(shape, seed), asymmetric_image(shape, seed + 1)
    ed_gt, es_gt = labelled_mask(shape, seed), labelled_mask(shape, seed + 1)
    seq = np.stack([asymmetric_image(shape, seed + k) for k in range(frames)])
    seq_gt = np.stack([labelled_mask(shape, seed + k) for k in range(frames)])
    info = {"Sex": "F" if seed % 2 else "M", "Age": str(40 + seed), "ImageQuality": "Good"}
    info |= {"LVedv": "101.5", "LVesv": "40.2", "LVef": "60.4", "FrameRate": "50"}
    return ViewRecord(patient, "4CH", ed, es, ed_gt, es_gt, spacing, info, seq, seq_gt)


@pytest.fixture
def record_factory() -> Callable[..., ViewRecord]:
    """`make_record` as a fixture, for tests in any folder."""
    return make_record
