"""The PatchGAN discriminator and the losses match the reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from echogen_trt.errors import ConfigError
from echogen_trt.models.discriminator import Discriminator
from echogen_trt.models.factory import build_discriminator, count_parameters
from echogen_trt.models.losses import generator_loss, l1_loss, lsgan_loss


def test_reference_size_has_the_reference_counts_and_a_16x16_grid() -> None:
    d = Discriminator()
    assert count_parameters(d) == (2_765_505, 1_792)
    with torch.device("meta"):
        out = Discriminator()(torch.zeros(1, 1, 256, 256), torch.zeros(1, 1, 256, 256))
    assert out.shape == (1, 1, 16, 16)
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [m.num_features for m in bns] == [128, 256, 512]


def test_receptive_field_is_94_pixels() -> None:
    d = Discriminator(width=2).eval()
    echo = torch.rand(1, 1, 256, 256, requires_grad=True)
    mask = torch.rand(1, 1, 256, 256)
    d(echo, mask)[0, 0, 8, 8].backward()
    rows = torch.nonzero(echo.grad[0, 0].abs().sum(dim=1)).flatten()
    cols = torch.nonzero(echo.grad[0, 0].abs().sum(dim=0)).flatten()
    assert int(rows.max() - rows.min()) + 1 == 94
    assert int(cols.max() - cols.min()) + 1 == 94


def test_echo_comes_first_in_the_input() -> None:
    d = Discriminator(width=2)
    first = d.net[0]
    with torch.no_grad():
        first.weight[:, 1].zero_()  # ignore channel 1 (the mask)
    echo, mask = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    assert torch.equal(d(echo, mask), d(echo, torch.zeros_like(mask)))


def test_factory_rejects_unknown_names() -> None:
    assert isinstance(build_discriminator(width=2), Discriminator)
    with pytest.raises(ConfigError, match=r"unknown name 'pixel'.*patchgan"):
        build_discriminator(arch="pixel")


def test_losses() -> None:
    scores = torch.tensor([[0.5, 1.5]])
    assert float(lsgan_loss(scores, real=True)) == pytest.approx(0.25)
    assert float(lsgan_loss(scores, real=False)) == pytest.approx((0.25 + 2.25) / 2)
    fake, real = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    assert float(l1_loss(fake, real)) == pytest.approx(0.5)
    total, adv, l1 = generator_loss(scores, fake, real)
    assert float(adv) == pytest.approx(0.25) and float(l1) == pytest.approx(0.5)
    assert float(total) == pytest.approx(1 * 0.25 + 100 * 0.5)
    total, _, _ = generator_loss(scores, fake, real, adv_weight=2.0, l1_weight=10.0)
    assert float(total) == pytest.approx(2 * 0.25 + 10 * 0.5)
