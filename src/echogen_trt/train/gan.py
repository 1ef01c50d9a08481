"""The GAN being trained: both networks, their optimizers and AMP scalers, and one iteration.

Per iteration (the reference recipe): generate fakes with G in inference mode (BN running
statistics, no grad); one Adam step of D on the real batch (target 1) and a separate one on the
fakes (target 0); then one G step in train mode on
adv_weight * MSE(D(G(m), m), 1) + l1_weight * mean|G(m) - x|.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from echogen_trt.models.factory import build_discriminator, build_generator, generator_config
from echogen_trt.models.losses import generator_loss, lsgan_loss
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.device import autocast_for

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


def make_optimizer(model: nn.Module, lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(
        model.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps
    )


def set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


def model_options(cfg: TrainConfig) -> dict[str, Any]:
    return dict(
        width=cfg.width, image_size=cfg.image_size, skips=cfg.skips, decoder_act=cfg.decoder_act,
        upsample=cfg.upsample,
    )  # fmt: skip


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
