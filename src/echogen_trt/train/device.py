"""Where a training run computes: the torch device, its autocast context, and the torchrun ranks.

DDP is confined here and to a few lines of the loop: RANK/WORLD_SIZE (set by torchrun) turn it
on, each rank trains on LOCAL_RANK's GPU, and rank 0 alone logs, validates, saves and reports.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from echogen_trt.errors import ConfigError
from echogen_trt.train.config import TrainConfig


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun launch (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def master(self) -> bool:
        """Rank 0: the process that logs, validates, saves and reports."""
        return self.rank == 0


def ranks_from_env() -> Ranks:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (absent: a single process)."""
    env = os.environ
    return Ranks(
        int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
    )


def start_ddp(ranks: Ranks, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU) when launched with several ranks."""
    if ranks.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def finish_ddp(ranks: Ranks) -> None:
    """Wait for every rank, then leave the process group."""
    if ranks.world > 1:
        dist.barrier()
        dist.destroy_process_group()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:<local_rank> when available, else cpu; ConfigError for unusable devices."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(
            f"device {name!r} | not a torch device. Expected auto, cpu or cuda[:N]."
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} | CUDA is not available on this machine. Hint: pass --device cpu."
        )
    return device


def autocast_for(cfg: TrainConfig, device: torch.device) -> Any:
    """A fresh autocast context per use (or nullcontext when AMP is off)."""
    if cfg.amp == "off":
        return nullcontext()
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
