"""Resizing and scaling of CAMUS frames and masks, as the reference model was trained.

The reference resized both the mask and the echo frame to 256x256 with Pillow's default filter of
the time (Pillow < 7: nearest neighbour), ignoring the aspect ratio. OpenCV's
``INTER_NEAREST_EXACT`` picks the same source pixels as Pillow's nearest (pixel centres);
plain ``INTER_NEAREST`` is shifted by up to one source pixel, so it is not used. Masks are always
resized by nearest neighbour: interpolating label values would invent labels (e.g. 2 between 1
and 3).

Sizes are (H, W) everywhere, as numpy shapes are; OpenCV's (W, H) stays inside this module.
"""

from __future__ import annotations

import cv2
import numpy as np

from echogen_trt.artifacts.labels import MAX_LABEL
from echogen_trt.errors import ConfigError, DataError

NEAREST = cv2.INTER_NEAREST_EXACT  # same pixels as Pillow's NEAREST, the reference's filter
IMAGE_INTERPOLATIONS = {"nearest": NEAREST, "area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label mask to (H, W); never creates a new label value."""
    _check_2d(mask, "mask")
    return _resize(mask, size, NEAREST)


def resize_image(image: np.ndarray, size: tuple[int, int], interp: str = "nearest") -> np.ndarray:
    """Resize an echo frame to (H, W): "nearest" (the reference), "area" or "linear"."""
    _check_2d(image, "image")
    if interp not in IMAGE_INTERPOLATIONS:
        raise ConfigError(
            f"image interpolation {interp!r} | unknown. "
            f"Expected one of {sorted(IMAGE_INTERPOLATIONS)}."
        )
    return _resize(image, size, IMAGE_INTERPOLATIONS[interp])


def image_to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 frame -> float32 in [0, 1] (value / 255), the generator's target scale."""
    if image.dtype != np.uint8:
        raise DataError(
            f"image | dtype {image.dtype}. Expected uint8 (8-bit echo frame). "
            "Hint: convert before scaling; a float frame may already be in [0, 1]."
        )
    unit: np.ndarray = image.astype(np.float32) / np.float32(255.0)
    return unit


def check_mask_values(mask: np.ndarray, source: str) -> None:
    """Raise DataError naming `source` and listing any value outside the CAMUS labels 0..3."""
    bad = np.setdiff1d(np.unique(mask), np.arange(MAX_LABEL + 1))
    if bad.size:
        raise DataError(
            f"{source} | mask values {bad.tolist()} outside 0..{MAX_LABEL}. Expected CAMUS "
            "labels 0 background, 1 LV, 2 myocardium, 3 LA."
        )


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) as two positive ints, or ConfigError."""
    if (
        len(size) != 2
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
        or min(size) < 1
    ):
        raise ConfigError(f"size {size!r} | invalid. Expected (H, W), two positive integers.")
    return int(size[0]), int(size[1])


def _check_2d(array: np.ndarray, what: str) -> None:
    if array.ndim != 2 or array.size == 0:
        raise DataError(f"{what} | shape {array.shape}. Expected a non-empty 2-D (H, W) array.")


def _resize(array: np.ndarray, size: tuple[int, int], flag: int) -> np.ndarray:
    h, w = check_size(size)
    if array.shape == (h, w):
        resized: np.ndarray = array.copy()
    else:
        resized = cv2.resize(array, (w, h), interpolation=flag)
    return resized
