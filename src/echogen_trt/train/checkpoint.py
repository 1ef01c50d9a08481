"""Checkpoints: one dict that can rebuild the generator alone and resume training exactly.

Keys: format_version, model_config, disc_config, experiment, kept_labels, image_size, G, D, opt_G,
opt_D, scaler (G's AMP scaler), scaler_d (D's), step, rng, config, best_val_l1 and best_val_score
(the validation L1 and selection score of best.pt; train/validation.py). Everything is a
tensor, a container or a plain Python value, so `torch.load(weights_only=True)` reads it (no
pickled classes). Files are written to a temporary name and moved into place with os.replace, so
a crash never leaves half a file.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import torch
from torch import nn

from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.errors import CheckpointError, ConfigError
from echogen_trt.fileio import atomic_write
from echogen_trt.fileio import sha256_file as file_sha256
from echogen_trt.models.factory import build_generator
from echogen_trt.runtime.default_model import RUNS_DIR
from echogen_trt.train.config import BEST_CKPT, LAST_CKPT

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_config", "experiment", "kept_labels", "image_size", "G")
STEP_NAME = re.compile(r"^step_(\d+)\.pt$")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def rng_state(sampler: torch.Generator) -> dict[str, Any]:
    """Every random state the loop depends on, as tensors and lists (weights_only-loadable)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "sampler": sampler.get_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(py_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], sampler: torch.Generator) -> None:
    """Inverse of rng_state."""
    torch.set_rng_state(state["torch"].cpu())
    sampler.set_state(state["sampler"].cpu())
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `state` atomically (temporary file in the same folder, then os.replace).

    torch.save reports a failed write (a full disk) as a RuntimeError about stream positions;
    the OSError behind it is re-raised instead, so fileio turns it into a one-line OutputError.
    """
    path = Path(path)
    with atomic_write(path) as handle:
        sink = _Sink(handle)
        try:
            torch.save(state, cast(BinaryIO, sink))  # it only calls write() and flush()
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise
    return path


class _Sink:
    """A write-only file object that remembers the OSError its `write` raised."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.handle.flush()


def generator_state(
    model: nn.Module,
    *,
    model_config: dict[str, Any],
    experiment: str,
    step: int = 0,
) -> dict[str, Any]:
    """A minimal loadable checkpoint holding only the generator (for export tests and tools).

    Training checkpoints add D, the optimizers, the two AMP scalers, RNG states and the config.
    """
    from echogen_trt.artifacts.labels import kept_labels

    kept = kept_labels(experiment)
    weights = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    return {
        "format_version": FORMAT_VERSION,
        "model_config": dict(model_config),
        "experiment": experiment,
        "kept_labels": list(kept),
        "image_size": int(model_config.get("image_size", REFERENCE_SIZE)),
        "G": weights,
        "step": int(step),
    }


def prune_checkpoints(folder: str | os.PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` step_*.pt files; returns the deleted paths."""
    steps = sorted(
        (int(m.group(1)), p)
        for p in Path(folder).iterdir()
        if (m := STEP_NAME.match(p.name)) is not None
    )
    doomed = [p for _, p in steps[: max(len(steps) - keep_last, 0)]]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint; CheckpointError for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} | not found. Hint: train one with `echogen-trt train` "
            f"({RUNS_DIR}/<name>/{LAST_CKPT} or {BEST_CKPT})."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(
            f"checkpoint {path} | cannot be read as a torch file ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Expected an echogen-trt checkpoint. "
            f"Hint: the file may be truncated or not a checkpoint; use {LAST_CKPT} or {BEST_CKPT} "
            "of a run."
        ) from err
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        got = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"checkpoint {path} | is not an echogen-trt checkpoint (missing {', '.join(missing)}). "
            f"Expected a dict with {', '.join(REQUIRED_KEYS)}, got {got}. "
            "Hint: a bare state_dict cannot be used; train with `echogen-trt train`."
        )
    if state["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} | format_version {state['format_version']} is newer than this "
            f"echogen-trt understands ({FORMAT_VERSION}). Hint: upgrade echogen-trt."
        )
    return dict(state)


def generator_from_state(state: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """The generator rebuilt from model_config with its weights; CheckpointError on mismatch."""
    try:
        model = build_generator(**state["model_config"])
        model.load_state_dict(state["G"])
    except (ConfigError, RuntimeError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {source} | generator weights do not match its model_config "
            f"{state['model_config']}: {str(err).splitlines()[0]}. "
            "Hint: the file was edited or written by another tool; "
            f"use a run's {LAST_CKPT} or {BEST_CKPT}."
        ) from err
    return model


def load_generator(
    path: str | os.PathLike[str], map_location: Any = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """(generator in eval mode, info) with info keys model_config, experiment, kept_labels,
    image_size, step, sha256 (of the file), recipe: the provenance export records."""
    state = load_checkpoint(path, map_location=map_location)
    device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
    model = generator_from_state(state, source=str(path)).to(device).eval()
    info = {
        "model_config": dict(state["model_config"]),
        "experiment": state["experiment"],
        "kept_labels": tuple(int(k) for k in state["kept_labels"]),
        "image_size": int(state["image_size"]),
        "step": int(state.get("step", 0)),
        "sha256": file_sha256(path),
        "recipe": recipe_of(state),
    }
    return model, info


def recipe_of(state: dict[str, Any]) -> dict[str, Any]:
    """The recipe choices that shaped the weights; checkpoints from before the option existed
    were trained with the reference's zero output bias."""
    config = state.get("config") or {}
    return {"output_bias": str(config.get("output_bias", "zero"))}
