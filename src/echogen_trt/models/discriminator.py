"""The reference conditional PatchGAN discriminator (Abdi et al. 2019, Keras code).

Input concat(echo, mask) (echo first); four Conv 4x4 s2 + LeakyReLU 0.2 blocks (BN on all but the
first), then a Conv 4x4 s1 'same' to one linear channel. A 256x256 pair gives a 16x16 grid of
scores ("patch size 16" is the grid stride); each score sees a 94x94 px window.
"""

from __future__ import annotations

import torch
from torch import nn

from echogen_trt.errors import ConfigError
from echogen_trt.models.generator import down_conv, init_keras, keras_bn, same_conv


class Discriminator(nn.Module):
    """(echo, mask) -> (N, 1, S / 2**n_layers, S / 2**n_layers) least-squares scores."""

    def __init__(self, in_channels: int = 2, width: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        if width < 1 or n_layers < 1 or in_channels < 1:
            raise ConfigError(
                f"discriminator | width, n_layers and in_channels must be >= 1. Got width={width}, "
                f"n_layers={n_layers}, in_channels={in_channels}."
            )
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n_layers):
            c_out = width * min(2**i, 8)
            layers.append(down_conv(c_in, c_out))
            if i > 0:
                layers.append(keras_bn(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        layers.append(same_conv(c_in, 1))
        self.net = nn.Sequential(*layers)
        self.apply(init_keras)

    def forward(self, echo: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.net(torch.cat([echo, mask], dim=1))
        return scores
