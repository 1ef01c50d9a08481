"""The GAN's training state as a checkpoint dict and back (file format: train/checkpoint.py).

Resumable exactly: the dict holds both networks, both optimizers, both AMP scalers and every RNG
state, so on a deterministic CPU run 2n steps equal n steps + resume + n steps bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch

from echogen_trt.artifacts.labels import kept_labels
from echogen_trt.train.checkpoint import FORMAT_VERSION, restore_rng, rng_state, unwrap
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.gan import GAN


def checkpoint_state(
    gan: GAN,
    cfg: TrainConfig,
    *,
    step: int,
    sampler: torch.Generator,
    best_val_l1: float | None,
    best_val_score: float | None = None,
) -> dict[str, Any]:
    """The checkpoint dict (format documented in train/checkpoint.py), from unwrapped modules."""
    return {
        "format_version": FORMAT_VERSION,
        "model_config": gan.model_config,
        "disc_config": {"arch": "patchgan", "in_channels": 2, "width": cfg.width},
        "experiment": cfg.experiment,
        "kept_labels": list(kept_labels(cfg.experiment)),
        "image_size": cfg.image_size,
        "G": unwrap(gan.G).state_dict(),
        "D": unwrap(gan.D).state_dict(),
        "opt_G": gan.opt_G.state_dict(),
        "opt_D": gan.opt_D.state_dict(),
        "scaler": gan.scaler.state_dict(),
        "scaler_d": gan.scaler_d.state_dict(),
        "step": step,
        "rng": rng_state(sampler),
        "config": cfg.to_dict(),
        "best_val_l1": best_val_l1,
        "best_val_score": best_val_score,
    }


def restore_state(
    gan: GAN, state: dict[str, Any], sampler: torch.Generator, reseed: int | None = None
) -> tuple[int, float | None]:
    """Load a checkpoint dict into `gan` and the RNGs; returns (step, best_val_l1).

    `reseed` (DDP ranks > 0): rank 0's sampler state was saved, so the other ranks get their own
    stream, seeded from `reseed` and the step. Checkpoints from before the per-optimizer scalers
    hold one shared "scaler"; D starts from it too.
    """
    gan.G.load_state_dict(state["G"])
    gan.D.load_state_dict(state["D"])
    gan.opt_G.load_state_dict(state["opt_G"])
    gan.opt_D.load_state_dict(state["opt_D"])
    gan.scaler.load_state_dict(state["scaler"])
    gan.scaler_d.load_state_dict(state.get("scaler_d", state["scaler"]))
    restore_rng(state["rng"], sampler)
    if reseed is not None:
        sampler.manual_seed(reseed + 1_000_003 * int(state["step"]))
    return int(state["step"]), state.get("best_val_l1")
