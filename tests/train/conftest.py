"""Fixtures for training tests: tiny phantom-like pairs and CAMUS trees, one torch thread."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from echogen_trt.data.camus_write import write_split_files, write_view
from echogen_trt.data.records import ViewRecord


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def structured_pair(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (mask, image): a fan with LV, myocardium and LA ellipses; the image is a fixed
    brightness per label plus noise, zero outside the fan (the image follows from the mask)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    fan = (np.abs(np.arctan2(xx - w / 2, yy + 1)) < 0.65) & (np.hypot(yy, xx - w / 2) < 0.95 * h)
    cy, cx = h * rng.uniform(0.35, 0.45), w * rng.uniform(0.45, 0.55)
    ry, rx = h * rng.uniform(0.15, 0.22), w * rng.uniform(0.08, 0.12)
    inner = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    la = ((yy - cy - 1.6 * ry) / (0.5 * ry)) ** 2 + ((xx - cx) / rx) ** 2 < 1
    mask = np.zeros((h, w), np.uint8)
    mask[inner < 1.6] = 2
    mask[inner < 1] = 1
    mask[la & (mask == 0)] = 3
    mask[~fan] = 0
    level = np.array([0.4, 0.06, 0.85, 0.1])[mask]
    image = np.clip(level + rng.normal(0, 0.05, (h, w)), 0.02, 1) * fan
    return mask, np.rint(image * 255).astype(np.uint8)


def pair_arrays(n: int, size: int, seed: int = 0) -> SimpleNamespace:
    """PairSet-like arrays at size x size: phantom frames when data.phantom exists, else
    structured arrays."""
    try:
        from echogen_trt.data.phantom import synth_patient
    except ImportError:
        synth_patient = None
    from echogen_trt.artifacts.preprocess import image_to_unit, resize_image, resize_mask

    rng = np.random.default_rng(seed)
    masks, images = [], []
    for i in range(n):
        if synth_patient is not None:
            rec = synth_patient(seed, i + 1, views=("4CH",), with_sequence=False)["4CH"]
            mask, image = rec.ed_gt, rec.ed
        else:
            mask, image = structured_pair(rng, 2 * size, 2 * size)
        masks.append(resize_mask(mask, (size, size)))
        images.append(image_to_unit(resize_image(image, (size, size))))
    return SimpleNamespace(masks=np.stack(masks), images=np.stack(images))


@pytest.fixture(scope="session")
def tiny_pairs() -> tuple[SimpleNamespace, SimpleNamespace]:
    """(train, valid) at 64x64: 8 and 2 patients."""
    train = pair_arrays(8, 64, seed=0)
    valid = pair_arrays(2, 64, seed=1)
    return train, valid


@pytest.fixture(scope="session")
def blob_pairs() -> tuple[SimpleNamespace, SimpleNamespace]:
    """(train, test) phantom pairs at 64x64: 16 and 4 patients (issue 10's blob test)."""
    return pair_arrays(16, 64, seed=0), pair_arrays(4, 64, seed=3)


def write_tree(root: Path, n_train: int = 3, n_valid: int = 2) -> Path:
    """A NIfTI-layout CAMUS tree of structured pairs with official split files."""
    rng = np.random.default_rng(7)
    names = [f"patient{i:04d}" for i in range(1, n_train + n_valid + 1)]
    for name in names:
        mask, image = structured_pair(rng, 96, 80)
        rec = ViewRecord(
            name, "4CH", image, image, mask, mask, (0.3, 0.3), {"ImageQuality": "Good"}
        )
        write_view(root, "nifti", rec)
    write_split_files(root, {"train": names[:n_train], "valid": names[n_train:], "test": []})
    return root


@pytest.fixture
def camus_tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "camus")
