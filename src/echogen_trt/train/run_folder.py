"""The run folder of a training run: creation and resume checks, metric records, checkpoint
rotation.

Kept apart from train/loop.py so the loop reads top to bottom; nothing here changes what is
learned. Every file except the appended metrics.jsonl is written atomically.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.errors import CheckpointError, ConfigError, TrainingError
from echogen_trt.fileio import remove_stale_temps, show_path, write_bytes_atomic, writing
from echogen_trt.train.checkpoint import prune_checkpoints, save_checkpoint
from echogen_trt.train.config import (
    ARCH_KEYS,
    CONFIG_FILE,
    LAST_CKPT,
    METRICS_FILE,
    TrainConfig,
    default_out,
)

log = logging.getLogger(__name__)

RUN_KEYS = {"experiment", "iters", "image_size", "width"}  # always in a run's config.json
LAST_LINK = f".{LAST_CKPT}.link"  # the hard link renamed over last.pt (atomic replace)


def prepare_out(cfg: TrainConfig, resume: bool, *, check_data: bool = True) -> Path:
    """Create and probe the run folder; refuse to overwrite a run unless resuming, and refuse a
    folder that is neither empty nor a run of ours (or the dataset). Removes the temporary
    files a killed run left (a checkpoint write cut short)."""
    out = Path(cfg.out or default_out(cfg.experiment))
    refuse_foreign_out(out, Path(cfg.data) if check_data else None)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"out {out} | not writable ({err.strerror or err}). Hint: choose another --out."
        ) from err
    has_run = (out / LAST_CKPT).exists()
    if resume and not has_run:
        raise CheckpointError(
            f"out {out} | --resume given but there is no {LAST_CKPT} to resume from. "
            "Hint: drop --resume to start a new run."
        )
    if has_run and not resume:
        raise ConfigError(
            f"out {out} | already holds a run ({LAST_CKPT}). Hint: pass --resume to continue it, "
            "or choose another --out."
        )
    remove_stale_temps(out)
    (out / LAST_LINK).unlink(missing_ok=True)
    return out


def refuse_foreign_out(out: Path, data: Path | None) -> None:
    """ConfigError when `out` is (or lies inside) the dataset, or is a non-empty folder that is
    not a run of ours (no config.json of ours): a run there would overwrite a user's config.json
    or add run files to their folder."""
    if data is not None and data.is_dir() and out.resolve().is_relative_to(data.resolve()):
        raise ConfigError(
            f"out {show_path(out)} | is the dataset folder --data {show_path(data)} or lies "
            "inside it. Expected a run folder outside the data. "
            f"Hint: --out {default_out('<name>')}."
        )
    if not out.is_dir() or not any(out.iterdir()) or is_run_folder(out):
        return
    raise ConfigError(
        f"out {show_path(out)} | is a non-empty folder that is not a training run (no "
        f"{CONFIG_FILE} written by `echogen-trt train`); its files could be overwritten. "
        "Expected an empty or new folder, or a previous run. "
        f"Hint: choose another --out, e.g. {default_out('<name>')}."
    )


def is_run_folder(out: Path) -> bool:
    """True when `out/config.json` is a TrainConfig written by a run (or last.pt is there)."""
    if (out / LAST_CKPT).is_file():
        return True
    try:
        data = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.keys() >= RUN_KEYS


def trim_metrics(out: Path, step: int) -> int:
    """Drop metrics.jsonl rows after `step` (written after the checkpoint a resume starts from,
    and a line cut short by a kill), so the resumed run does not record them twice."""
    path = out / METRICS_FILE
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for raw in path.read_bytes().splitlines():
        try:
            line = raw.decode("utf-8")  # a non-UTF-8 byte: a damaged row, dropped like a cut one
            row = json.loads(line)
            keep = int(row["step"]) <= step
        except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        write_bytes_atomic(path, "".join(f"{line}\n" for line in kept).encode("utf-8"))
        log.info("resume: dropped %d metrics.jsonl row(s) after step %d", dropped, step)
    return dropped


def config_for_resume(cfg: TrainConfig, state: dict[str, Any]) -> TrainConfig:
    """The architecture keys come from the checkpoint (the weights must fit the network)."""
    saved = {"output_bias": "zero", **(state.get("config") or {})}  # older runs: the reference
    forced = {k: saved[k] for k in ARCH_KEYS if k in saved and saved[k] != getattr(cfg, k)}
    for key, value in forced.items():
        log.warning("resume: %s=%r from the checkpoint (not %r)", key, value, getattr(cfg, key))
    return replace(cfg, **forced)


def write_checkpoint(state: dict[str, Any], out: Path, keep_last: int) -> Path:
    """step_NNNNNNN.pt plus last.pt (a hard link where possible), then prune old steps."""
    path = save_checkpoint(state, out / f"step_{state['step']:07d}.pt")
    tmp = out / LAST_LINK
    try:
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, out / LAST_CKPT)
    except OSError:
        save_checkpoint(state, out / LAST_CKPT)
    prune_checkpoints(out, keep_last)
    return path


def open_tensorboard(cfg: TrainConfig, out: Path) -> Any:
    """A SummaryWriter when asked for and installed, else None (optional dependency)."""
    if not cfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.debug("tensorboard not installed: logging to metrics.jsonl only")
        return None
    return SummaryWriter(str(out / "tb"))


def record(out: Path, row: dict[str, Any], tb: Any) -> None:
    """Append one JSON line to metrics.jsonl (and scalars to TensorBoard)."""
    path = out / METRICS_FILE
    with writing(path), open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    if tb is not None:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                tb.add_scalar(key, value, row["step"])


def prefixed(metrics: dict[str, float]) -> dict[str, float]:
    return {f"val_{k}": v for k, v in metrics.items()}


def check_finite(losses: dict[str, float], step: int, out: Path) -> None:
    """TrainingError naming the step and the last good checkpoint on a NaN/inf loss."""
    bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
    if bad:
        last = out / LAST_CKPT
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was saved"
        raise TrainingError(
            f"training step {step} | non-finite loss {bad}. Expected finite losses; {kept}. "
            "Hint: lower --lr, turn AMP off, or check the data for NaN values."
        )
