"""Validation during training: G's frames for the validation masks, their metrics inside the fan,
and a picture of a few of them (val/step_N.png in the run folder).

`select`, the score best.pt is chosen by, is the in-fan L1 plus the speckle-detail gap: the
difference in mean local standard deviation (5x5 windows, inside the fan) between generated and
real frames, in the same intensity units as L1. L1 alone is lowest for a blurry mean image early in
training (the issue 24 audit: validation PSNR peaked at 279 of 930 iterations while KID kept
improving); a blurry frame has too little local detail, so the gap term holds it back.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from echogen_trt.fileio import write_bytes_atomic
from echogen_trt.metrics import fan_mask, fan_metrics
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.device import autocast_for


@torch.no_grad()
def generate(G: nn.Module, masks: torch.Tensor, batch_size: int, cfg: TrainConfig) -> np.ndarray:
    """G(masks) in eval mode, batched, as float32 numpy (N, H, W)."""
    G.eval()
    outs = []
    for i in range(0, len(masks), batch_size):
        m = masks[i : i + batch_size]
        if cfg.channels_last:
            m = m.contiguous(memory_format=torch.channels_last)
        with autocast_for(cfg, m.device):
            outs.append(G(m).float()[:, 0].cpu().numpy())
    return np.concatenate(outs)


def validation_grid(masks: np.ndarray, fakes: np.ndarray, reals: np.ndarray) -> np.ndarray:
    """uint8 image: one column per pair, rows mask (labels x 85) / generated / real."""
    rows = [
        np.concatenate(list(np.clip(masks * 85, 0, 255)), axis=1),
        np.concatenate(list(fakes * 255), axis=1),
        np.concatenate(list(reals * 255), axis=1),
    ]
    return np.clip(np.rint(np.concatenate(rows, axis=0)), 0, 255).astype(np.uint8)


DETAIL_WINDOW = 5


def local_detail(frame: np.ndarray) -> np.ndarray:
    """Per-pixel standard deviation of `frame` (H, W) in DETAIL_WINDOW x DETAIL_WINDOW windows."""
    x = frame.astype(np.float64)
    k = (DETAIL_WINDOW, DETAIL_WINDOW)
    mean = cv2.blur(x, k, borderType=cv2.BORDER_REFLECT)
    var = cv2.blur(x * x, k, borderType=cv2.BORDER_REFLECT) - mean * mean
    result: np.ndarray = np.sqrt(np.clip(var, 0.0, None))
    return result


def detail_gap(fakes: np.ndarray, reals: np.ndarray) -> float:
    """Mean over frames of |mean local std of fake - of real| inside the fan (real > 0)."""
    fans = fan_mask(reals)
    gaps = [
        abs(float(local_detail(f)[m].mean()) - float(local_detail(r)[m].mean()))
        for f, r, m in zip(fakes, reals, fans, strict=True)
    ]
    return float(np.mean(gaps))


def validate(
    G: nn.Module,
    val: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    out: Path,
    step: int,
) -> dict[str, float]:
    """L1 / PSNR / SSIM inside the fan, the detail gap and `select` (L1 + detail gap: lower is
    better) over the validation pairs; writes val/step_N.png."""
    masks, images = val
    fakes = generate(G, masks, cfg.batch_size, cfg)
    reals = images[:, 0].cpu().numpy()
    metrics = fan_metrics(fakes, reals)
    metrics["detail_gap"] = detail_gap(fakes, reals)
    metrics["select"] = metrics["l1"] + metrics["detail_gap"]
    if cfg.val_images:
        k = min(cfg.val_images, len(fakes))
        grid = validation_grid(masks[:k, 0].cpu().numpy(), fakes[:k], reals[:k])
        ok, png = cv2.imencode(".png", grid)
        if ok:
            write_bytes_atomic(out / "val" / f"step_{step:07d}.png", png.tobytes())
    return metrics
