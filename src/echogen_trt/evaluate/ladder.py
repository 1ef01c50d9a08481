"""Controlled degradations of real frames: the sanity ladder every fidelity score must order.

A protocol that cannot rank the real frames above their blurred, shifted or swapped versions, and
all of them above a mask-agnostic grey sector, cannot be trusted to rank generators either (issue
24's audit). Each condition maps real test frames (float32 (N, H, W) in [0, 1]) to "generated"
ones; `sector` is the ultrasound sector with its holes filled, the region every paired metric
and the grey floor use (the phantoms' cavities are exactly 0, so `real > 0` misses them).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from echogen_trt.errors import InputMismatch


def sector(real: np.ndarray) -> np.ndarray:
    """Boolean (N, H, W): the fan (real > 0) with its holes filled, i.e. the cavities inside it.

    Holes are filled per frame; the convex hull closes a cavity that opens onto the fan's edge
    (the fan is a circular sector, so convex). An all-zero frame gives an empty sector.
    """
    r = np.asarray(real)
    if r.ndim != 3:
        raise InputMismatch(f"real frames | shape {r.shape}. Expected (N, H, W).")
    out = np.zeros(r.shape, bool)
    for i, frame in enumerate(r):
        fan = frame > 0
        if not fan.any():
            continue
        points = cv2.findNonZero(fan.astype(np.uint8))
        hull = np.zeros(fan.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        out[i] = ndimage.binary_fill_holes(fan) | hull.astype(bool)
    return out


def grey_sector(real: np.ndarray, level: float) -> np.ndarray:
    """The mask-agnostic floor: `level` inside each frame's sector, 0 outside (no anatomy)."""
    return np.where(sector(real), np.float32(level), np.float32(0.0)).astype(np.float32)


def sector_level(images: np.ndarray) -> float:
    """Mean intensity inside the sector of `images` (the training frames give the floor's grey)."""
    s = sector(images)
    return float(np.asarray(images)[s].mean()) if s.any() else 0.0


def blur(real: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each frame (sigma in pixels), kept inside the sector."""
    frames = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in np.asarray(real, np.float32)])
    return np.where(sector(real), frames, 0.0).astype(np.float32)


def shift(real: np.ndarray, pixels: int) -> np.ndarray:
    """Each frame moved `pixels` to the right (zeros enter on the left): the anatomy no longer
    sits where the masks put it."""
    out = np.zeros_like(np.asarray(real, np.float32))
    out[:, :, pixels:] = np.asarray(real, np.float32)[:, :, : out.shape[2] - pixels]
    return out


def swap(real: np.ndarray, patients: list[str]) -> np.ndarray:
    """Each frame replaced by the frame at the same position of the next patient's frames
    (cyclically): realistic frames of the wrong anatomy. Frames are grouped by patient in order."""
    names = list(dict.fromkeys(patients))
    if len(names) < 2:
        raise InputMismatch(f"swap | {len(names)} patient(s). Expected at least two to swap.")
    index = {name: [i for i, p in enumerate(patients) if p == name] for name in names}
    out = np.asarray(real, np.float32).copy()
    for k, name in enumerate(names):
        donor = index[names[(k + 1) % len(names)]]
        for j, i in enumerate(index[name]):
            out[i] = real[donor[j % len(donor)]]
    return out
