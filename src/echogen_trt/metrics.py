"""Paired image metrics inside the ultrasound fan: L1, PSNR, SSIM (numpy, torch-free).

Outside the fan every CAMUS frame is exactly zero and every decent generator learns that, so
whole-frame metrics are inflated by up to a third of the pixels. The fan is the set of pixels where
the real frame is > 0, or a mask the caller gives. Paired SSIM of good echo generators is low (about
0.3-0.5: speckle is not reproducible pixel for pixel); report it, do not optimise for it.
"""

from __future__ import annotations

import cv2
import numpy as np

from echogen_trt.errors import InputMismatch

SSIM_SIGMA = 1.5  # Wang et al. 2004: 11x11 Gaussian window, K1 0.01, K2 0.03
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _as_batch(array: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (N, H, W) or (N, 1, H, W) -> float64 (N, H, W)."""
    a = np.asarray(array)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputMismatch(
            f"{name} | shape {a.shape} not supported. Expected (H, W), (N, H, W) or (N, 1, H, W)."
        )
    return a.astype(np.float64)


def fan_mask(real: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Boolean (N, H, W) fan: `mask` != 0 where given, else real > 0."""
    real_b = _as_batch(real, "real")
    fan = real_b > 0 if mask is None else _as_batch(mask, "mask") != 0
    if fan.shape != real_b.shape:
        raise InputMismatch(
            f"fan mask | shape {fan.shape} differs from the real images {real_b.shape}. "
            "Expected one fan per real image."
        )
    empty = np.flatnonzero(~fan.reshape(len(fan), -1).any(axis=1))
    if empty.size:
        raise InputMismatch(
            f"fan mask | image(s) {empty.tolist()} have an empty fan (real image all zero and no "
            "mask given). Expected a non-zero ultrasound sector. Hint: pass a fan mask."
        )
    return fan


def ssim_map(pred: np.ndarray, real: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-pixel SSIM of two (H, W) images (Gaussian window, sigma 1.5, reflected borders)."""
    x, y = pred.astype(np.float64), real.astype(np.float64)

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    result: np.ndarray = num / den
    return result


def psnr_db(pred: np.ndarray, real: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR of `pred` against `real` over all their values, in dB (inf when identical): the
    one formula, for the in-fan metrics and for export verification (FP16 vs FP32)."""
    err = pred.astype(np.float64) - real.astype(np.float64)
    mse = float(np.mean(err * err))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(data_range**2 / mse))


def fan_metrics(
    pred: np.ndarray,
    real: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float = 1.0,
) -> dict[str, float]:
    """Mean over images of L1, PSNR (dB) and SSIM, each computed inside that image's fan.

    `pred` and `real` share a shape ((H, W), (N, H, W) or (N, 1, H, W)) and a scale
    (`data_range` 1.0 for [0, 1] floats, 255 for uint8). PSNR is inf for a perfect match.
    """
    p, r = _as_batch(pred, "pred"), _as_batch(real, "real")
    if p.shape != r.shape:
        raise InputMismatch(
            f"pred | shape {p.shape} differs from real {r.shape}. Expected the same shape."
        )
    fan = fan_mask(real, mask)
    l1s, psnrs, ssims = [], [], []
    for pi, ri, fi in zip(p, r, fan, strict=True):
        l1s.append(float(np.mean(np.abs(pi[fi] - ri[fi]))))
        psnrs.append(psnr_db(pi[fi], ri[fi], data_range))
        ssims.append(float(np.mean(ssim_map(pi, ri, data_range)[fi])))
    return {"l1": float(np.mean(l1s)), "psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}


def fill_holes(region: np.ndarray) -> np.ndarray:
    """A boolean (H, W) region with its holes filled: every pixel not 4-connected to the border
    through background. Same result as scipy.ndimage.binary_fill_holes, with OpenCV (base
    dependency) instead of scipy (~140 MB installed, for this one function)."""
    padded = np.pad(region.astype(np.uint8), 1)  # one background ring joins every border pixel
    _, labels = cv2.connectedComponents(1 - padded, connectivity=4)
    return np.asarray(labels[1:-1, 1:-1] != labels[0, 0])


SATURATION_LEVEL = 0.9  # of data_range: "white" in a region where every real frame is black


def outside_fan_saturation(
    pred: np.ndarray,
    real: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float = 1.0,
    level: float = SATURATION_LEVEL,
) -> float:
    """Fraction of the pixels outside the fan where `pred` > `level` x `data_range`.

    Outside the sector every real frame is exactly black, so any bright pixel there is an artefact
    (the saturated apex blob of issue 10). The fan's holes (dark pixels inside the sector) are
    filled first, so only the true background counts. 0.0 when no pixel lies outside the fan.
    """
    p = _as_batch(pred, "pred")
    fan = fan_mask(real, mask)
    if p.shape != fan.shape:
        raise InputMismatch(
            f"pred | shape {p.shape} differs from real {fan.shape}. Expected the same shape."
        )
    outside = ~np.stack([fill_holes(f) for f in fan])
    n_out = int(outside.sum())
    if n_out == 0:
        return 0.0
    return float(np.count_nonzero(p[outside] > level * data_range) / n_out)


def frame_metrics(pred: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """In-fan L1/PSNR/SSIM plus `sat_out`, the share of background pixels above 0.9 (the
    apex blob): the figures the demo and the blob study report for [0, 1] frames."""
    return {**fan_metrics(pred, real), "sat_out": outside_fan_saturation(pred, real)}
