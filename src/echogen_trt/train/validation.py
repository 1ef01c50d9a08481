"""Validation during training: G's frames for the validation masks, their metrics inside the fan,
and a picture of a few of them (val/step_N.png in the run folder)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from echogen_trt.fileio import write_bytes_atomic
from echogen_trt.metrics import fan_metrics
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


def validate(
    G: nn.Module,
    val: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    out: Path,
    step: int,
) -> dict[str, float]:
    """L1 / PSNR / SSIM inside the fan over the validation pairs; writes val/step_N.png."""
    masks, images = val
    fakes = generate(G, masks, cfg.batch_size, cfg)
    reals = images[:, 0].cpu().numpy()
    metrics = fan_metrics(fakes, reals)
    if cfg.val_images:
        k = min(cfg.val_images, len(fakes))
        grid = validation_grid(masks[:k, 0].cpu().numpy(), fakes[:k], reals[:k])
        ok, png = cv2.imencode(".png", grid)
        if ok:
            write_bytes_atomic(out / "val" / f"step_{step:07d}.png", png.tobytes())
    return metrics
