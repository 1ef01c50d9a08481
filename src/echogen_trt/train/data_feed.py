"""The training pairs: loaded from cfg.data, moved onto the device, and sampled per iteration."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from echogen_trt.errors import DataError
from echogen_trt.train.config import TrainConfig

log = logging.getLogger(__name__)


class Pairs(Protocol):
    """What the loop needs of a data.dataset.PairSet."""

    masks: np.ndarray  # uint8 (N, H, W) raw labels, unkept labels zeroed
    images: np.ndarray  # float32 (N, H, W) in [0, 1]


def check_data_root(data: str) -> Path:
    """The data folder, or DataError with the `synth` hint when it is missing or empty."""
    root = Path(data)
    if not root.is_dir() or not any(root.iterdir()):
        raise DataError(
            f"data {root} | missing or empty. Expected a CAMUS tree (either layout). "
            "Hint: run `echogen-trt synth --out data/phantom` first (the default --data), or "
            "pass --data <CAMUS root>."
        )
    return root


def load_data(cfg: TrainConfig) -> tuple[Pairs, Pairs | None]:
    """Train and valid pairs of cfg.data; valid is None when the split has no valid patients."""
    from echogen_trt.data.dataset import load_pairs
    from echogen_trt.data.splits import check_disjoint, resolve_split

    root = check_data_root(cfg.data)
    size = (cfg.image_size, cfg.image_size)
    opts: dict[str, Any] = dict(
        experiment=cfg.experiment,
        view=cfg.view,
        phase=cfg.phase,
        size=size,
        image_interp=cfg.image_interp,
        split_source=cfg.split_source,
        skip_bad=cfg.skip_bad,
    )
    train_set = load_pairs(root, split="train", progress=sys.stderr.isatty(), **opts)
    if not resolve_split(root, cfg.split_source).get("valid"):
        log.warning("%s has no validation patients: validating on the first training pairs", root)
        return train_set, None
    valid_set = load_pairs(root, split="valid", **opts)
    check_disjoint(("train", train_set.patients), ("valid", valid_set.patients), f"data {root}")
    return train_set, valid_set


def as_tensors(pairs: Pairs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks float32 (N, 1, H, W) raw labels, images float32 (N, 1, H, W)) on `device`."""
    masks = torch.from_numpy(np.ascontiguousarray(pairs.masks, dtype=np.float32))[:, None]
    images = torch.from_numpy(np.ascontiguousarray(pairs.images, dtype=np.float32))[:, None]
    return masks.to(device), images.to(device)


def check_size(masks: torch.Tensor, cfg: TrainConfig) -> None:
    """DataError when the pairs are not cfg.image_size square (arrays passed in directly)."""
    if masks.shape[-1] != cfg.image_size or masks.shape[-2] != cfg.image_size:
        raise DataError(
            f"train pairs | size {tuple(masks.shape[-2:])} does not match image_size "
            f"{cfg.image_size}. Hint: load them with size=({cfg.image_size}, {cfg.image_size})."
        )


def sample_batch(
    masks: torch.Tensor, images: torch.Tensor, cfg: TrainConfig, sampler: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`cfg.batch_size` pairs drawn uniformly with replacement (the reference recipe)."""
    idx = torch.randint(len(masks), (cfg.batch_size,), generator=sampler).to(masks.device)
    m, x = masks[idx], images[idx]
    if cfg.channels_last:
        m, x = (t.contiguous(memory_format=torch.channels_last) for t in (m, x))
    return m, x
