"""The reference training recipe in one readable loop (nanoGPT style: no trainer class).

Each iteration samples `batch_size` pairs with replacement and runs one `train_step` (train/gan.py:
one D step on real, one on fake, one G step). Resumable exactly (train/state.py). DDP: launch with
torchrun; RANK/WORLD_SIZE turn it on (train/device.py), each rank samples its own batches, and
only rank 0 logs, validates, saves and reports.

With `max_seconds` the run also stops on the clock: the time is read before every iteration, and
the loop stops when one more iteration (as long as the last one took) plus the last validation and
checkpoint would no longer fit, so a run ends within its budget whatever the machine's load (no
iteration count is derived from a probe). The final step is always validated and checkpointed.
`best.pt` is the checkpoint with the lowest validation `select` score (train/validation.py: in-fan
L1 plus the speckle-detail gap), not the lowest L1, which favours early, blurry generators.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from echogen_trt.errors import ConfigError
from echogen_trt.train.checkpoint import load_checkpoint, save_checkpoint
from echogen_trt.train.config import (
    BEST_CKPT,
    CONFIG_FILE,
    LAST_CKPT,
    TrainConfig,
    check_config,
    default_out,
    save_config,
)
from echogen_trt.train.data_feed import (
    Pairs,
    as_tensors,
    check_data_root,
    check_size,
    load_data,
    sample_batch,
)
from echogen_trt.train.device import finish_ddp, ranks_from_env, resolve_device, start_ddp
from echogen_trt.train.gan import LOSS_NAMES, build_gan, output_bias_for, train_step
from echogen_trt.train.run_folder import (
    check_finite,
    config_for_resume,
    open_tensorboard,
    prefixed,
    prepare_out,
    record,
    trim_metrics,
    write_checkpoint,
)
from echogen_trt.train.state import checkpoint_state, restore_state
from echogen_trt.train.validation import validate

log = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    """What a run did; `echogen-trt train --json` prints it."""

    out: str
    step: int
    start_step: int
    seconds: float
    it_per_s: float
    last_checkpoint: str
    best_checkpoint: str | None
    best_val_l1: float | None  # the in-fan L1 of best.pt
    losses: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0
    device: str = "cpu"
    world_size: int = 1
    stopped_by: str = "iters"  # "iters" or "clock" (max_seconds)
    cpu_seconds: float = 0.0  # CPU time of this process during the run (all threads)
    load: list[float] = field(default_factory=list)  # 1/5/15-min load average at the end
    best_val_score: float | None = None  # the selection score of best.pt

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train_for_report(cfg: TrainConfig, *, resume: bool = False) -> TrainSummary | None:
    """`train`, with the summary only where it is to be reported: None on the torchrun ranks
    other than 0 (they neither validate nor save, so their summary has no best checkpoint)."""
    summary = train(cfg, resume=resume)
    return summary if ranks_from_env().master else None


Clock = Callable[[], float]


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    train_set: Pairs | None = None,
    valid_set: Pairs | None = None,
    clock: Clock = time.perf_counter,
) -> TrainSummary:
    """Train (or with `resume`, continue) a run in cfg.out; returns a summary.

    `train_set`/`valid_set` skip loading cfg.data (tests and notebooks pass arrays directly).
    `clock` (seconds) is what `cfg.max_seconds` is measured on, from this call's start.
    Everything a user can get wrong (config, data folder, output folder, resume state) is checked
    before the first step. torch's global deterministic flag is restored on return.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return run_training(cfg, resume, train_set, valid_set, clock)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def run_training(
    cfg: TrainConfig,
    resume: bool,
    train_set: Pairs | None,
    valid_set: Pairs | None,
    clock: Clock = time.perf_counter,
) -> TrainSummary:
    """The loop itself, top to bottom (see `train`)."""
    t_start, cpu_start = clock(), time.process_time()
    deadline = None if cfg.max_seconds is None else t_start + cfg.max_seconds
    # -- config, DDP and device
    check_config(cfg)
    cfg = replace(cfg, out=cfg.out or default_out(cfg.experiment))
    ranks = ranks_from_env()
    rank, world, master = ranks.rank, ranks.world, ranks.master
    device = resolve_device(cfg.device, ranks.local_rank)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp | 'fp16' needs a CUDA device. Hint: use --amp bf16 or --amp off.")
    if train_set is None:
        check_data_root(cfg.data)  # before the run folder is created
    out = prepare_out(cfg, resume, check_data=train_set is None) if master else Path(cfg.out or ".")
    state = load_checkpoint(out / LAST_CKPT) if resume else None
    if state is not None:
        cfg = config_for_resume(cfg, state)
    start_ddp(ranks, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = not cfg.deterministic

    # -- data (arrays live on the device: 256x256 float pairs are small)
    if train_set is None:
        train_set, valid_set = load_data(cfg)
    masks, images = as_tensors(train_set, device)
    check_size(masks, cfg)
    val = as_tensors(valid_set, device) if valid_set is not None else (masks[:8], images[:8])
    n_valid = 0 if valid_set is None else len(val[0])

    # -- models, optimizers, scaler, sampler
    if state is not None:  # the run's own value (checkpoints from before the option: Keras' 0)
        out_bias = float(state["model_config"].get("out_bias", 0.0))
    else:
        out_bias = output_bias_for(cfg, images)
    gan = build_gan(cfg, device, out_bias)
    sampler = torch.Generator().manual_seed(cfg.seed + rank)
    step, best_val_l1, best_score = 0, None, None
    if state is not None:
        step, best_val_l1 = restore_state(gan, state, sampler, cfg.seed + rank if rank else None)
        best_score = state.get("best_val_score")
        log.info("resumed %s at step %d", out / LAST_CKPT, step)
    if master:  # rows a killed run wrote after its last checkpoint (all of them: a new run)
        trim_metrics(out, step if state is not None else -1)
    if world > 1:
        gan.wrap_ddp(device)
    start_step = step
    if step >= cfg.iters:
        log.warning("run is already at step %d of iters=%d: nothing to do", step, cfg.iters)

    def snapshot() -> dict[str, Any]:
        return checkpoint_state(
            gan, cfg, step=step, sampler=sampler, best_val_l1=best_val_l1,
            best_val_score=best_score,
        )  # fmt: skip

    # -- bookkeeping
    tb = None
    wrapup = 0.0  # seconds of the last validation + checkpoint: kept free before the deadline
    if master:
        save_config(cfg, out / CONFIG_FILE)
        tb = open_tensorboard(cfg, out)
        if step == 0 and cfg.val_every:  # the untrained baseline (its time: a first wrap-up guess)
            t_val = clock()
            record(out, {"step": 0, **prefixed(validate(gan.G, val, cfg, out, 0))}, tb)
            wrapup = 2 * (clock() - t_val)
    bar = tqdm(
        total=None if deadline is not None else cfg.iters, initial=step, desc="train",
        disable=None if master else True,
    )  # fmt: skip
    losses: dict[str, float] = {}
    last_val: dict[str, float] = {}
    t0, t_log, step_log = time.perf_counter(), time.perf_counter(), step
    last_path = out / LAST_CKPT
    done: dict[str, int] = {"val": -1, "ckpt": -1}  # the step last validated / checkpointed

    def validate_and_keep() -> None:
        nonlocal last_val, best_val_l1, best_score
        last_val = validate(gan.G, val, cfg, out, step)
        record(out, {"step": step, **prefixed(last_val)}, tb)
        done["val"] = step
        if best_score is None or last_val["select"] < best_score:
            best_score, best_val_l1 = last_val["select"], last_val["l1"]
            save_checkpoint(snapshot(), out / BEST_CKPT)

    def checkpoint() -> None:
        write_checkpoint(snapshot(), out, cfg.keep_last)
        done["ckpt"] = step

    iter_s, t_iter = 0.0, 0.0  # the last iteration's duration, and when the current one began

    def out_of_time() -> bool:
        nonlocal t_iter
        if deadline is None:
            return False
        t_iter = clock()
        stop = t_iter + iter_s + wrapup >= deadline
        if world > 1:  # every rank stops at the same step, or DDP's all-reduce hangs
            flag = torch.tensor([float(stop)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    # -- the loop
    stopped_by = "iters"
    while step < cfg.iters:
        if out_of_time():
            stopped_by = "clock"
            break
        m, x = sample_batch(masks, images, cfg, sampler)
        losses = dict(zip(LOSS_NAMES, train_step(gan, m, x, cfg).tolist(), strict=True))
        step += 1
        check_finite(losses, step, out)
        bar.update(1)
        if not master:
            continue
        if step % cfg.log_every == 0 or step == cfg.iters:
            now = time.perf_counter()
            rate = (step - step_log) / max(now - t_log, 1e-9)
            t_log, step_log = now, step
            bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
            record(out, {"step": step, **losses, "it_per_s": rate}, tb)
        t_book = clock()
        iter_s = t_book - t_iter if deadline is not None else 0.0
        if cfg.val_every and (step % cfg.val_every == 0 or step == cfg.iters):
            validate_and_keep()
        if step % cfg.ckpt_every == 0 or step == cfg.iters:
            checkpoint()
        if done["val"] == step and done["ckpt"] == step:
            wrapup = clock() - t_book
        elif done["val"] == step or done["ckpt"] == step:  # half of the wrap-up: count it twice
            wrapup = max(wrapup, 2 * (clock() - t_book))
    if master and step > start_step:  # a run stopped on the clock ends validated and saved
        if cfg.val_every and done["val"] != step:
            validate_and_keep()
        if done["ckpt"] != step:
            checkpoint()

    # -- wrap up
    bar.close()
    seconds = time.perf_counter() - t0
    if tb is not None:
        tb.close()
    finish_ddp(ranks)
    best = out / BEST_CKPT
    return TrainSummary(
        out=str(out),
        step=step,
        start_step=start_step,
        seconds=round(seconds, 3),
        it_per_s=round((step - start_step) / max(seconds, 1e-9), 3),
        last_checkpoint=str(last_path),
        best_checkpoint=str(best) if best.exists() else None,
        best_val_l1=best_val_l1,
        losses=losses,
        val=last_val,
        n_train=len(masks),
        n_valid=n_valid,
        device=str(device),
        world_size=world,
        stopped_by=stopped_by,
        cpu_seconds=round(time.process_time() - cpu_start, 3),
        load=[round(x, 2) for x in os.getloadavg()],
        best_val_score=best_score,
    )
