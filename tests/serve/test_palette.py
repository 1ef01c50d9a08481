"""The page's label colours stay apart for colour-blind users: simulated deuteranopia and
protanopia (Machado, Oliveira & Fernandes 2009, severity 1.0, in linear RGB), CIELAB distance
between every two labels (background included) and luminance contrast (WCAG) where the colours
meet most: the LV cavity inside its wall, and each label on the black background."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from echogen_trt.serve.palette import PAGE_LABELS

MACHADO = {
    "normal": np.eye(3),
    "protanopia": np.array(
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ]
    ),
    "deuteranopia": np.array(
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.011820, 0.042940, 0.968881],
        ]
    ),
}
SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)
WHITE = np.array([0.9505, 1.0, 1.089])
OLD_PAGE = {0: (0, 0, 0), 1: (230, 60, 60), 2: (60, 200, 60), 3: (40, 120, 230)}


def linear(rgb: tuple[int, int, int]) -> np.ndarray:
    c = np.asarray(rgb, float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def seen(rgb: tuple[int, int, int], vision: str) -> np.ndarray:
    return np.clip(MACHADO[vision] @ linear(rgb), 0, 1)


def contrast(a: np.ndarray, b: np.ndarray) -> float:
    la, lb = sorted((float(a @ SRGB_TO_XYZ[1]), float(b @ SRGB_TO_XYZ[1])), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def lab(c: np.ndarray) -> np.ndarray:
    xyz = SRGB_TO_XYZ @ c / WHITE
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def problems(palette: dict[int, tuple[int, int, int]]) -> list[str]:
    found = []
    for vision in MACHADO:
        shown = {label: seen(rgb, vision) for label, rgb in palette.items()}
        for a, b in itertools.combinations(sorted(shown), 2):
            distance = float(np.linalg.norm(lab(shown[a]) - lab(shown[b])))
            if distance < 30:
                found.append(f"{vision} {a}/{b}: delta E {distance:.0f} < 30")
        for a, b in ((1, 2), (0, 1), (0, 2), (0, 3)):
            ratio = contrast(shown[a], shown[b])
            if ratio < 3.0:
                found.append(f"{vision} {a}/{b}: contrast {ratio:.2f} < 3")
    return found


def test_page_palette_is_colour_blind_safe() -> None:
    assert problems({label: rgb for label, (_, _, rgb) in PAGE_LABELS.items()}) == []


def test_the_check_catches_the_old_red_green_palette() -> None:
    found = problems(OLD_PAGE)
    assert "deuteranopia 1/2: contrast 1.49 < 3" in found  # as issue #27 measured
    assert any(p.startswith("deuteranopia 1/2: delta E") for p in found)


@pytest.mark.parametrize("vision", ["protanopia", "deuteranopia"])
def test_simulation_keeps_grey_grey(vision: str) -> None:
    grey = seen((128, 128, 128), vision)
    assert np.allclose(grey, grey[0], atol=2e-3)  # rows of Machado's matrices sum to 1
