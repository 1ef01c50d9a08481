"""Phantom masks for the page's sliders and its ED->ES cine, from the data layer's anatomy.

The sliders set a mid-sized apical 4-chamber heart (LV length and width, wall thickness, LA
size); `phase` 0..1 moves it from end-diastole to end-systole with the same deformation as the
phantom dataset's sequences (`anatomy.systole`, a fixed seed). The mask is drawn straight at the
model's size in a fan that fills the frame, as CAMUS frames look once resized to a square.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from echogen_trt.data import anatomy as an
from echogen_trt.data import speckle as sp
from echogen_trt.data.phantom import draw_labels
from echogen_trt.serve.requests import RequestRejected

DEPTH_MM = 165.0
HALF_ANGLE_DEG = 37.0
HALF_ANGLE = float(np.deg2rad(HALF_ANGLE_DEG))
_TRAITS = an.Traits(
    sex="M", age=55, scale=1.0, area_ratio=0.62, systole_s=0.32, n_frames=16
)  # fmt: skip


@dataclass(frozen=True)
class PhantomShape:
    """Slider values (mm) and the cardiac phase (0 = ED, 1 = ES)."""

    lv_length: float = 86.0
    lv_width: float = 48.0
    wall: float = 9.5
    la_size: float = 40.0
    phase: float = 0.0


# name -> (min, max): what the page's sliders offer and the API accepts
RANGES: dict[str, tuple[float, float]] = {
    "lv_length": (60.0, 105.0),
    "lv_width": (30.0, 65.0),
    "wall": (5.0, 16.0),
    "la_size": (25.0, 55.0),
    "phase": (0.0, 1.0),
}


def shape_from_query(query: dict[str, str]) -> PhantomShape:
    """PhantomShape from query parameters; RequestRejected naming a bad or unknown one."""
    names = {f.name for f in fields(PhantomShape)}
    unknown = sorted(set(query) - names - {"format"})
    if unknown:
        raise RequestRejected(
            f"phantom | unknown parameter(s) {', '.join(unknown)}. Expected {', '.join(RANGES)}."
        )
    values: dict[str, float] = {}
    for name in names & set(query):
        low, high = RANGES[name]
        try:
            value = float(query[name])
        except ValueError:
            value = float("nan")
        if not low <= value <= high:  # also catches nan
            raise RequestRejected(
                f"phantom {name} | {query[name]!r}. Expected a number in [{low:g}, {high:g}]."
            )
        values[name] = value
    return PhantomShape(**values)


def _hearts(shape: PhantomShape) -> tuple[an.Heart, an.Heart]:
    """ED and ES hearts of the slider shape (ES from the dataset's systole, seed 0)."""
    ed = an.Heart(
        apex_x=4.0, apex_y=30.0, tilt=0.06, length=shape.lv_length, width=shape.lv_width,
        sep_frac=0.48, point=0.62, widest=0.63, annulus=0.8, wall=shape.wall,
        apex_wall=shape.wall * 0.65, la_len=shape.la_size, la_width=shape.la_size * 1.02,
        la_tilt=0.0, rv_width=28.0, rv_start=0.33, ra_len=36.0, ra_width=36.0, papillary=0.0,
    )  # fmt: skip
    es = an.systole(ed, np.random.default_rng(0), _TRAITS)
    return ed, es


def phantom_mask(shape: PhantomShape, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W) raw labels (LV 1, myocardium 2, LA 3) of the slider heart at `shape.phase`."""
    ed, es = _hearts(shape)
    heart = an.blend(ed, es, 0.5 - 0.5 * float(np.cos(np.pi * shape.phase)))
    rows, cols = size
    col_mm = DEPTH_MM * np.sin(HALF_ANGLE) / ((cols - 1) / 2)
    sector = sp.Sector(DEPTH_MM, HALF_ANGLE, rows, cols, (DEPTH_MM / (rows - 1), col_mm))
    return draw_labels(an.contours(heart), sector, sector.fan())


def with_phase(shape: PhantomShape, phase: float) -> PhantomShape:
    return replace(shape, phase=phase)
