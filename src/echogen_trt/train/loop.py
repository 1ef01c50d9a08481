"""The reference training recipe in one readable loop (nanoGPT style: no trainer class).

Per iteration: sample a batch of `batch_size` pairs with replacement; generate fakes with G in
inference mode (BN running statistics, no grad); one Adam step of D on the real batch (target 1)
and a separate one on the fakes (target 0); then one G step in train mode on
adv_weight * MSE(D(G(m), m), 1) + l1_weight * mean|G(m) - x|.

Resumable exactly: the checkpoint holds both networks, both optimizers, both AMP scalers and every
RNG state, so on a deterministic CPU run 2n steps equal n steps + resume + n steps bit for bit.
DDP: launch with torchrun; RANK/WORLD_SIZE turn it on, each rank samples its own batches, and only
rank 0 logs, validates and saves.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from echogen_trt.artifacts.labels import kept_labels
from echogen_trt.errors import ConfigError, DataError
from echogen_trt.models.factory import build_discriminator, build_generator, generator_config
from echogen_trt.models.losses import generator_loss, lsgan_loss
from echogen_trt.train.bookkeeping import (
    autocast_for,
    check_finite,
    config_for_resume,
    open_tensorboard,
    prefixed,
    prepare_out,
    record,
    trim_metrics,
    validate,
    write_checkpoint,
)
from echogen_trt.train.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
    unwrap,
)
from echogen_trt.train.config import TrainConfig, check_config, save_config

log = logging.getLogger(__name__)


class Pairs(Protocol):
    """What the loop needs of a data.dataset.PairSet."""

    masks: np.ndarray  # uint8 (N, H, W) raw labels, unkept labels zeroed
    images: np.ndarray  # float32 (N, H, W) in [0, 1]


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
    best_val_l1: float | None
    losses: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0
    device: str = "cpu"
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------- setup helpers


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
    from echogen_trt.data.splits import resolve_split

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
    return train_set, load_pairs(root, split="valid", **opts)


def as_tensors(pairs: Pairs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks float32 (N, 1, H, W) raw labels, images float32 (N, 1, H, W)) on `device`."""
    masks = torch.from_numpy(np.ascontiguousarray(pairs.masks, dtype=np.float32))[:, None]
    images = torch.from_numpy(np.ascontiguousarray(pairs.images, dtype=np.float32))[:, None]
    return masks.to(device), images.to(device)


def make_optimizer(model: nn.Module, lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(
        model.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps
    )


def set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


LOSS_NAMES = ("d_real", "d_fake", "g", "g_adv", "g_l1")


@dataclass
class GAN:
    """Both networks, their training views (DDP wrappers or the modules), optimizers, one AMP
    scaler per optimizer (`scaler` for G, `scaler_d` for D) and G's model_config (checkpoints
    record it so that `build_generator(**model_config)` rebuilds G)."""

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    G_train: nn.Module
    D_train: nn.Module
    model_config: dict[str, Any] = field(default_factory=dict)

    def wrap_ddp(self, device: torch.device) -> None:
        ids = [device.index] if device.type == "cuda" else None
        self.G_train = nn.parallel.DistributedDataParallel(self.G, device_ids=ids)
        self.D_train = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)


def output_bias_for(cfg: TrainConfig, images: torch.Tensor | np.ndarray) -> float:
    """G's initial output bias: 0 (Keras) or the logit of the mean training target.

    With a zero bias every pixel starts at 0.5; pixels pushed up early (the bright near field
    at the fan apex) run into the flat end of the sigmoid, where L1's gradient vanishes, and
    stay white (the apex blob). Starting at the mean target (about 0.1 for echo) avoids that.
    """
    if cfg.output_bias == "zero":
        return 0.0
    mean = float(images.mean())
    mean = min(max(mean, 1e-3), 1 - 1e-3)
    return round(float(np.log(mean / (1 - mean))), 6)


def build_gan(cfg: TrainConfig, device: torch.device, out_bias: float = 0.0) -> GAN:
    """Seeded G and D (Keras init, G's output bias `out_bias`) on `device`, Adam optimizers
    and their AMP scalers."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model_config = generator_config(**model_options(cfg), out_bias=out_bias)
    G = build_generator(**model_config).to(device)
    D = build_discriminator(width=cfg.width).to(device)
    if cfg.channels_last:
        G = G.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        D = D.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return GAN(
        G=G,
        D=D,
        opt_G=make_optimizer(G, cfg.lr_g, cfg),
        opt_D=make_optimizer(D, cfg.lr_d, cfg),
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16"),
        scaler_d=torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16"),
        G_train=G,
        D_train=D,
        model_config=model_config,
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


def train_step(gan: GAN, m: torch.Tensor, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """One reference iteration on masks `m` and frames `x`; the losses (LOSS_NAMES) detached.

    AMP (fp16): G and D have their own GradScaler, each updated once per step of its optimizer
    (D steps twice per iteration and GradScaler allows one step per optimizer between updates),
    so an overflow in one network never lowers the other's scale.
    """
    G, D = gan.G, gan.D
    # fakes from G in inference mode (BN running statistics), as the reference did
    G.eval()
    with torch.no_grad(), autocast_for(cfg, m.device):
        fake = G(m).float()

    # D: a real step (target 1) and a separate fake step (target 0)
    gan.D_train.train()
    d_losses = []
    for batch, is_real in ((x, True), (fake, False)):
        gan.opt_D.zero_grad(set_to_none=True)
        with autocast_for(cfg, m.device):
            loss_d = lsgan_loss(gan.D_train(batch, m), real=is_real)
        gan.scaler_d.scale(loss_d).backward()
        gan.scaler_d.step(gan.opt_D)
        gan.scaler_d.update()
        d_losses.append(loss_d.detach())

    # G: adversarial + L1 through the unwrapped D, frozen (its grads would be discarded)
    gan.G_train.train()
    set_requires_grad(D, False)
    gan.opt_G.zero_grad(set_to_none=True)
    with autocast_for(cfg, m.device):
        fake = gan.G_train(m)
        loss_g, adv, l1 = generator_loss(D(fake, m), fake, x, cfg.adv_weight, cfg.l1_weight)
    gan.scaler.scale(loss_g).backward()
    gan.scaler.step(gan.opt_G)
    gan.scaler.update()
    set_requires_grad(D, True)
    return torch.stack([*d_losses, loss_g.detach(), adv.detach(), l1.detach()])


# ----------------------------------------------------------------------------- bookkeeping


def checkpoint_state(
    gan: GAN,
    cfg: TrainConfig,
    *,
    step: int,
    sampler: torch.Generator,
    best_val_l1: float | None,
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


def model_options(cfg: TrainConfig) -> dict[str, Any]:
    return dict(
        width=cfg.width, image_size=cfg.image_size, skips=cfg.skips, decoder_act=cfg.decoder_act
    )


# ----------------------------------------------------------------------------- the loop


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    train_set: Pairs | None = None,
    valid_set: Pairs | None = None,
) -> TrainSummary:
    """Train (or with `resume`, continue) a run in cfg.out; returns a summary.

    `train_set`/`valid_set` skip loading cfg.data (tests and notebooks pass arrays directly).
    Everything a user can get wrong (config, data folder, output folder, resume state) is checked
    before the first step. torch's global deterministic flag is restored on return.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return run_training(cfg, resume, train_set, valid_set)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def run_training(
    cfg: TrainConfig, resume: bool, train_set: Pairs | None, valid_set: Pairs | None
) -> TrainSummary:
    """The loop itself, top to bottom (see `train`)."""
    # -- config, DDP and device
    check_config(cfg)
    cfg = replace(cfg, out=cfg.out or str(Path("runs") / cfg.experiment))
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    master = rank == 0
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp | 'fp16' needs a CUDA device. Hint: use --amp bf16 or --amp off.")
    if train_set is None:
        check_data_root(cfg.data)  # before the run folder is created
    out = prepare_out(cfg, resume, check_data=train_set is None) if master else Path(cfg.out or ".")
    state = load_checkpoint(out / "last.pt") if resume else None
    if state is not None:
        cfg = config_for_resume(cfg, state)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = not cfg.deterministic

    # -- data (arrays live on the device: 256x256 float pairs are small)
    if train_set is None:
        train_set, valid_set = load_data(cfg)
    masks, images = as_tensors(train_set, device)
    if masks.shape[-1] != cfg.image_size or masks.shape[-2] != cfg.image_size:
        raise DataError(
            f"train pairs | size {tuple(masks.shape[-2:])} does not match image_size "
            f"{cfg.image_size}. Hint: load them with size=({cfg.image_size}, {cfg.image_size})."
        )
    val = as_tensors(valid_set, device) if valid_set is not None else (masks[:8], images[:8])
    n_valid = 0 if valid_set is None else len(val[0])

    # -- models, optimizers, scaler, sampler
    if state is not None:  # the run's own value (checkpoints from before the option: Keras' 0)
        out_bias = float(state["model_config"].get("out_bias", 0.0))
    else:
        out_bias = output_bias_for(cfg, images)
    gan = build_gan(cfg, device, out_bias)
    sampler = torch.Generator().manual_seed(cfg.seed + rank)
    step, best_val_l1 = 0, None
    if state is not None:
        step, best_val_l1 = restore_state(gan, state, sampler, cfg.seed + rank if rank else None)
        log.info("resumed %s at step %d", out / "last.pt", step)
    if master:  # rows a killed run wrote after its last checkpoint (all of them: a new run)
        trim_metrics(out, step if state is not None else -1)
    if world > 1:
        gan.wrap_ddp(device)
    start_step = step
    if step >= cfg.iters:
        log.warning("run is already at step %d of iters=%d: nothing to do", step, cfg.iters)

    def snapshot() -> dict[str, Any]:
        return checkpoint_state(gan, cfg, step=step, sampler=sampler, best_val_l1=best_val_l1)

    # -- bookkeeping
    tb = None
    if master:
        save_config(cfg, out / "config.json")
        tb = open_tensorboard(cfg, out)
        if step == 0 and cfg.val_every:  # the untrained baseline
            record(out, {"step": 0, **prefixed(validate(gan.G, val, cfg, out, 0))}, tb)
    bar = tqdm(total=cfg.iters, initial=step, desc="train", disable=None if master else True)
    losses: dict[str, float] = {}
    last_val: dict[str, float] = {}
    t0, t_log, step_log = time.perf_counter(), time.perf_counter(), step
    last_path = out / "last.pt"

    # -- the loop
    while step < cfg.iters:
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
        if cfg.val_every and (step % cfg.val_every == 0 or step == cfg.iters):
            last_val = validate(gan.G, val, cfg, out, step)
            record(out, {"step": step, **prefixed(last_val)}, tb)
            if best_val_l1 is None or last_val["l1"] < best_val_l1:
                best_val_l1 = last_val["l1"]
                save_checkpoint(snapshot(), out / "best.pt")
        if step % cfg.ckpt_every == 0 or step == cfg.iters:
            write_checkpoint(snapshot(), out, cfg.keep_last)

    # -- wrap up
    bar.close()
    seconds = time.perf_counter() - t0
    if tb is not None:
        tb.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    best = out / "best.pt"
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
    )
