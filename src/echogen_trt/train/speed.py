"""How long one training iteration takes: the loop's own batch draw and step, timed.

The demo turns its time budget into an iteration count with it; the timing is the loop's, so the
prediction holds for the run that follows.
"""

from __future__ import annotations

import time

import torch

from echogen_trt.train.config import TrainConfig
from echogen_trt.train.data_feed import sample_batch
from echogen_trt.train.gan import GAN, train_step


def step_seconds(
    gan: GAN, masks: torch.Tensor, images: torch.Tensor, cfg: TrainConfig, n: int, warmup: int = 2
) -> list[float]:
    """Seconds of each of `n` iterations of `train_step` after `warmup` untimed ones, on batches
    drawn as the loop draws them (sampler seeded with cfg.seed)."""
    sampler = torch.Generator().manual_seed(cfg.seed)
    times = []
    for i in range(warmup + n):
        m, x = sample_batch(masks, images, cfg, sampler)
        start = time.perf_counter()
        train_step(gan, m, x, cfg).tolist()  # .tolist() waits for the device, as the loop does
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times
