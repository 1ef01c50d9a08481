"""A cine from one drawn mask: the end-diastolic (ED) mask deformed towards end-systole (ES).

The page's cine used to play the phantom whatever the user drew. Here the user's own mask is the
ED frame and ES follows from an ejection fraction (EF): the LV cavity shrinks from its border so
that its area is (1 - EF)^(2/3) of the ED area (volume ~ area^(3/2) for a shape that shrinks
evenly), the myocardium takes the freed ring and gives the same area back at its outer border
(muscle is incompressible, so the wall thickens), and the LA fills: its area grows by
(1 + EF)^(2/3) into the background around it. Frames in between interpolate each label's signed
distance (a standard shape interpolation) with the phantom's cosine timing, so the contraction is
smooth and an ED -> ES -> ED loop has no jump. A geometric approximation for looking at what the
model does with a moving heart, not a motion model.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from echogen_trt.errors import InputMismatch

LV, MYO, LA = 1, 2, 3
EF_RANGE = (0.05, 0.85)
FRAMES_RANGE = (2, 48)


def _edt(inside: np.ndarray) -> np.ndarray:
    """Distance (pixels) from each inside pixel to the nearest outside pixel (0 outside)."""
    if inside.all():
        return np.full(inside.shape, float(max(inside.shape)))
    return np.asarray(ndimage.distance_transform_edt(inside), np.float64)


def _ranked(candidates: np.ndarray, key: np.ndarray, count: int) -> np.ndarray:
    """The `count` candidate pixels with the smallest `key`, ties broken by the distance to
    the candidates' centroid (so a shape shrinks or grows evenly, not row by row)."""
    index = np.flatnonzero(candidates)
    count = max(0, min(count, index.size))
    out = np.zeros(candidates.shape, bool)
    if count == 0:
        return out
    rows, cols = np.divmod(index, candidates.shape[1])
    spread = np.hypot(rows - rows.mean(), cols - cols.mean())
    order = np.lexsort((spread, key.ravel()[index]))  # by key, then by spread
    out.ravel()[index[order[:count]]] = True
    return out


def _keep_deepest(inside: np.ndarray, depth: np.ndarray, fraction: float) -> np.ndarray:
    """The round(`fraction` x area) pixels of `inside` with the largest `depth`."""
    return _ranked(inside, -depth, round(int(inside.sum()) * fraction))


def end_systole(ed: np.ndarray, ef: float) -> np.ndarray:
    """The ES mask of an ED label mask for ejection fraction `ef` (see the module docstring)."""
    lv, myo, la = ed == LV, ed == MYO, ed == LA
    if not lv.any():
        raise InputMismatch(
            "mask | no LV cavity (label 1) to contract. Expected a mask with an LV. "
            "Hint: draw the LV, or start from the phantom."
        )
    lv_es = _keep_deepest(lv, _edt(lv), (1.0 - ef) ** (2.0 / 3.0))
    es = np.where(lv & ~lv_es, 0, ed).astype(np.uint8)
    if myo.any():
        wall = myo | (lv & ~lv_es)
        gained = int((lv & ~lv_es).sum())
        heart = wall | lv_es
        outer = _edt(heart)  # depth from the outside of the heart
        # give `gained` pixels back at the wall's outer border: keep the deepest of the wall
        wall_es = _keep_deepest(wall, outer, max(0.0, 1.0 - gained / max(int(wall.sum()), 1)))
        es = np.where(wall & ~lv_es, 0, es)
        es[wall_es & ~lv_es] = MYO
    if la.any():
        grow = int(la.sum() * ((1.0 + ef) ** (2.0 / 3.0) - 1.0))
        distance = _edt(~la)  # distance from the LA into the free background
        es[_ranked((es == 0) & (distance > 0), distance, grow)] = LA
    return es


def _signed(inside: np.ndarray) -> np.ndarray:
    return _edt(inside) - _edt(~inside)


def sequence(ed: np.ndarray, frames: int, ef: float) -> np.ndarray:
    """uint8 (frames, H, W): ED at 0, ES at the end, signed-distance interpolation between."""
    es = end_systole(ed, ef)
    out = np.zeros((frames, *ed.shape), np.uint8)
    labels = [label for label in (LA, MYO, LV) if (ed == label).any() or (es == label).any()]
    distances = {label: (_signed(ed == label), _signed(es == label)) for label in labels}
    for k in range(frames):
        weight = 0.5 - 0.5 * float(np.cos(np.pi * k / (frames - 1)))
        frame = out[k]
        for label in labels:  # painted LA, then myocardium, then the LV on top (as the phantom)
            start, end = distances[label]
            frame[(1.0 - weight) * start + weight * end > 0] = label
    out[0], out[-1] = ed, es
    return out
