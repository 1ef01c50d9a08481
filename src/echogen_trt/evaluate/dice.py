"""Dice overlap per label and for the epicardium, the way CAMUS results are reported (numpy).

Dice = 2 |A n B| / (|A| + |B|) per image, then averaged over images. CAMUS labels: 1 LV cavity,
2 myocardium, 3 left atrium; the epicardium is the LV with its wall (labels 1 and 2 together),
the "LV epi" column of the CAMUS papers. An image where a structure is absent from both the
prediction and the reference says nothing about it and is left out of that structure's mean.
"""

from __future__ import annotations

import numpy as np

from echogen_trt.errors import InputMismatch

# name -> the labels that make up the structure
STRUCTURES: dict[str, tuple[int, ...]] = {"lv": (1,), "myo": (2,), "la": (3,), "epi": (1, 2)}


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """Dice of two boolean masks; NaN when both are empty (nothing to overlap)."""
    p, t = np.asarray(pred, bool), np.asarray(target, bool)
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int(np.logical_and(p, t).sum()) / total


def structures_for(kept: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The structures a model conditioned on `kept` labels can be judged on."""
    return {name: labels for name, labels in STRUCTURES.items() if set(labels) <= set(kept)}


def dice_per_image(
    pred: np.ndarray, target: np.ndarray, structures: dict[str, tuple[int, ...]] = STRUCTURES
) -> dict[str, np.ndarray]:
    """{structure: float64 (N,) Dice} for label maps `pred` and `target` of shape (N, H, W)."""
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape or p.ndim != 3:
        raise InputMismatch(
            f"label maps | pred {p.shape}, target {t.shape}. Expected two (N, H, W) arrays of "
            "the same shape."
        )
    out = {}
    for name, labels in structures.items():
        lab = np.asarray(labels, dtype=t.dtype)
        out[name] = np.array(
            [dice(np.isin(a, lab), np.isin(b, lab)) for a, b in zip(p, t, strict=True)]
        )
    return out


def mean_dice(
    pred: np.ndarray, target: np.ndarray, structures: dict[str, tuple[int, ...]] = STRUCTURES
) -> dict[str, float | None]:
    """{structure: mean Dice over the images where it appears}; None where it never does."""
    out: dict[str, float | None] = {}
    for name, values in dice_per_image(pred, target, structures).items():
        seen = values[~np.isnan(values)]
        out[name] = float(seen.mean()) if seen.size else None
    return out
