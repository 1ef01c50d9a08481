"""The reference losses: least-squares GAN (targets 1 real / 0 fake) plus L1 reconstruction.

The code weights them 1 (adversarial) and 100 (L1); the paper writes the same objective as
L1 + 0.01 * L_adv up to a global factor 100.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """MSE of every patch score to 1 (real) or 0 (fake)."""
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.mse_loss(scores.float(), target.float())


def l1_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every pixel (Keras 'mae')."""
    return F.l1_loss(fake.float(), real.float())


def generator_loss(
    scores_fake: torch.Tensor,
    fake: torch.Tensor,
    real: torch.Tensor,
    adv_weight: float = 1.0,
    l1_weight: float = 100.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """adv_weight * MSE(D(G(m), m), 1) + l1_weight * mean|G(m) - x|; returns (total, adv, l1)."""
    adv = lsgan_loss(scores_fake, real=True)
    l1 = l1_loss(fake, real)
    return adv_weight * adv + l1_weight * l1, adv, l1
