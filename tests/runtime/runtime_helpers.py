"""Helpers shared by the runtime tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fakes.onnx_models import TOY_SIZE as SIZE  # noqa: F401 (imported by the tests)
from fakes.onnx_models import toy_model as toy_model


def labels_mask(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """uint8 (H, W) with labels 0..3 in off-centre blocks that move with `seed`."""
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    s = seed % 5
    mask[h // 8 + s : h // 2, w // 5 : w // 2 + s] = 1
    mask[h // 8 + s : h // 2, w // 2 + s : w // 2 + s + max(2, w // 12)] = 2
    mask[h // 2 + 2 : h - 3, w // 4 - s : w // 2 + 2 * s] = 3
    return mask


def write_png(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", mask)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def read_png(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)
