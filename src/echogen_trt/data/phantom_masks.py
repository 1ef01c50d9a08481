"""Quick phantom label masks: an apical-4CH-like LV cavity (1) in a myocardium ring (2) above
the LA (3), drawn as ellipses. For export verification and benchmark inputs, which need masks
of any size holding every label in a plausible layout, fast and without a dataset; the full
synthetic patients (anatomy, fan, speckle images) are `data.phantom`. Torch-free.
"""

from __future__ import annotations

import numpy as np


def phantom_mask(size_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """uint8 (H, W) labels 0..3; centre and radii drawn from `rng` (four draws)."""
    h, w = size_hw
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(0.35, 0.45), w * rng.uniform(0.42, 0.58)
    ry, rx = h * rng.uniform(0.20, 0.26), w * rng.uniform(0.10, 0.15)
    lv = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2
    la = ((rows - (cy + ry * 1.6)) / (ry * 0.5)) ** 2 + ((cols - cx) / (rx * 1.1)) ** 2
    mask = np.zeros((h, w), np.uint8)
    mask[la <= 1.0] = 3
    mask[lv <= 1.6] = 2
    mask[lv <= 1.0] = 1
    return mask


def phantom_masks(n: int, size_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """uint8 (n, H, W): `n` phantom masks, reproducibly from `seed`."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, *size_hw), np.uint8)
    for i in range(n):
        masks[i] = phantom_mask(size_hw, rng)
    return masks
