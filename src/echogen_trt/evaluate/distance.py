"""Contour distances in millimetres per structure: HD95 and mean absolute distance (numpy/scipy).

CAMUS papers report, beside Dice, the Hausdorff distance and the mean absolute distance between
the predicted and the reference contour (Leclerc et al. 2019). Here, as in medpy's `hd95` and
`assd`: the contour of a mask is its pixels that touch the background (the mask less its
erosion); each contour pixel's distance to the nearest pixel of the other contour is measured
with the pixel spacing (anisotropic Euclidean distance transform). HD95 is the larger of the two
directed 95th percentiles, the mean absolute distance (MAD) the mean of the two directed means.
HD95 is used instead of the maximum because one stray pixel decides the maximum.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from echogen_trt.errors import InputMismatch


def contour(mask: np.ndarray) -> np.ndarray:
    """Boolean contour: the pixels of `mask` with a 4-neighbour outside it (or on the edge)."""
    m = np.asarray(mask, bool)
    eroded = ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(2, 1))
    result: np.ndarray = m & ~eroded
    return result


def _directed(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Distances (mm) from each contour pixel of `a` to the nearest contour pixel of `b`."""
    result: np.ndarray = ndimage.distance_transform_edt(~b, sampling=spacing)[a]
    return result


def hd95_mad(
    pred: np.ndarray, target: np.ndarray, spacing: tuple[float, float]
) -> tuple[float, float]:
    """(HD95, MAD) in mm between two boolean masks; NaN for both when either one is empty."""
    p, t = contour(pred), contour(target)
    if not p.any() or not t.any():
        return float("nan"), float("nan")
    d_pt, d_tp = _directed(p, t, spacing), _directed(t, p, spacing)
    hd95 = max(float(np.percentile(d_pt, 95)), float(np.percentile(d_tp, 95)))
    return hd95, 0.5 * (float(d_pt.mean()) + float(d_tp.mean()))


def distances_per_image(
    pred: np.ndarray,
    target: np.ndarray,
    spacings: np.ndarray,
    structures: dict[str, tuple[int, ...]],
) -> dict[str, dict[str, np.ndarray]]:
    """{structure: {"hd95": (N,), "mad": (N,)}} in mm for label maps (N, H, W) and per-image
    (row, col) spacings (N, 2). NaN where the structure is missing from either map."""
    p, t, s = np.asarray(pred), np.asarray(target), np.asarray(spacings, np.float64)
    if p.shape != t.shape or p.ndim != 3 or s.shape != (len(p), 2):
        raise InputMismatch(
            f"contour distances | pred {p.shape}, target {t.shape}, spacings {s.shape}. "
            "Expected two (N, H, W) label maps and (N, 2) spacings."
        )
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, labels in structures.items():
        pairs = [
            hd95_mad(np.isin(a, labels), np.isin(b, labels), (float(sp[0]), float(sp[1])))
            for a, b, sp in zip(p, t, s, strict=True)
        ]
        values = np.array(pairs, np.float64).reshape(len(p), 2)
        out[name] = {"hd95": values[:, 0], "mad": values[:, 1]}
    return out


def mean_distances(
    pred: np.ndarray,
    target: np.ndarray,
    spacings: np.ndarray,
    structures: dict[str, tuple[int, ...]],
) -> dict[str, dict[str, float | int | None]]:
    """{structure: {"hd95_mm", "mad_mm", "missing"}}: means over the images where the reference
    has the structure and the prediction found it; `missing` counts those where it did not (a
    structure the judge cannot find has no contour distance: Dice 0 says it instead)."""
    has = {name: [bool(np.isin(m, labels).any()) for m in target] for name, labels in
           structures.items()}  # fmt: skip
    out: dict[str, dict[str, float | int | None]] = {}
    for name, values in distances_per_image(pred, target, spacings, structures).items():
        ok = ~np.isnan(values["hd95"])
        missing = int(np.sum(np.array(has[name]) & ~ok))
        out[name] = {
            "hd95_mm": float(values["hd95"][ok].mean()) if ok.any() else None,
            "mad_mm": float(values["mad"][ok].mean()) if ok.any() else None,
            "missing": missing,
        }
    return out
