"""The demo's training budget: minutes turned into a fixed iteration count from the measured speed
of the training loop's own step, and a note when the run then took much longer than predicted."""

from __future__ import annotations

import logging
import statistics
from typing import Any

from echogen_trt.demo.config import MIN_ITERS

log = logging.getLogger(__name__)

SAFETY = 0.92  # share of the remaining budget given to the loop (validation, checkpoints)
SLOWDOWN = 1.5  # training this much slower than measured gets a warning in the report


def measure_speed(tcfg: Any, train_set: Any, n: int) -> float:
    """Median seconds per training iteration (the loop's own step, 2 warm-up calls first)."""
    import torch

    from echogen_trt.train.data_feed import as_tensors
    from echogen_trt.train.gan import build_gan
    from echogen_trt.train.speed import step_seconds

    device = torch.device(tcfg.device)
    gan = build_gan(tcfg, device)
    masks, images = as_tensors(train_set, device)
    return statistics.median(step_seconds(gan, masks, images, tcfg, n, warmup=2))


def iterations_for(budget_s: float, s_per_it: float) -> int:
    """The fixed iteration count that fits the budget (round numbers, at least MIN_ITERS)."""
    n = int(SAFETY * budget_s / max(s_per_it, 1e-6))
    step = 100 if n >= 2000 else 10
    return max(MIN_ITERS, n // step * step)


def slowdown_note(calib: float | None, iters: int, seconds: float) -> str | None:
    """A warning when training ran much slower than measured (another job took the cores)."""
    if calib is None or seconds <= SLOWDOWN * calib * iters:
        return None
    from echogen_trt.bench.env import load_average

    note = (
        f"training took {seconds:.0f} s, {seconds / (calib * iters):.1f}x what the measured "
        f"speed predicted; the machine was busy (load {load_average()})"
    )
    log.warning("%s: the iteration count stays fixed, so the demo ran over its budget", note)
    return note
