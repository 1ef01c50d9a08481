"""A compact segmentation U-Net: the judge `echogen-trt evaluate` uses to read generated frames.

The field scores mask-conditioned echo generators by segmenting their frames with a U-Net and
comparing the result with the conditioning mask (Stojanovski et al. 2023; Gilbert et al. 2021).
This is a small, plain U-Net for that job (Ronneberger et al. 2015): 3x3 conv-BN-ReLU pairs,
max-pool down, transposed-conv up, skips by concatenation, a 1x1 head with one logit per label.
`width` 8 and `depth` 4 give about 0.5 M parameters; `width` 16 about 1.9 M.

`features` returns the global average of every encoder level (bottleneck included), the
embedding in which `evaluate` measures KID between real and generated frames.
"""

from __future__ import annotations

import torch
from torch import nn

from echogen_trt.errors import ConfigError

N_CLASSES = 4  # background, LV, myocardium, LA


class ConvPair(nn.Module):
    """Two 3x3 conv-BN-ReLU layers at one resolution."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


class SegmenterUNet(nn.Module):
    """Frame (N, 1, S, S) in [0, 1] -> logits (N, n_classes, S, S); S divisible by 2**depth."""

    def __init__(self, width: int = 8, depth: int = 4, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        if width < 1 or depth < 1 or n_classes < 2:
            raise ConfigError(
                f"segmenter | width {width}, depth {depth}, classes {n_classes}. Expected "
                "width >= 1, depth >= 1 and at least 2 classes."
            )
        chans = [width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList(
            [ConvPair(1, chans[0])] + [ConvPair(chans[i], chans[i + 1]) for i in range(depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [
                nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                for i in reversed(range(depth))
            ]
        )
        self.merge = nn.ModuleList(
            [ConvPair(2 * chans[i], chans[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(chans[0], n_classes, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every encoder level, finest first, bottleneck last."""
        size = x.shape[-1]
        if x.shape[-2] % 2**self.depth or size % 2**self.depth:
            raise ConfigError(
                f"segmenter input | size {tuple(x.shape[-2:])}. Expected sides divisible by "
                f"{2**self.depth} (depth {self.depth})."
            )
        levels = [self.down[0](x * 2.0 - 1.0)]
        for block in self.down[1:]:
            levels.append(block(self.pool(levels[-1])))
        return levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.encode(x)
        out = levels[-1]
        for up, merge, skip in zip(self.up, self.merge, reversed(levels[:-1]), strict=True):
            out = merge(torch.cat([up(out), skip], dim=1))
        logits: torch.Tensor = self.head(out)
        return logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, sum of encoder channels): each level's channel means, concatenated."""
        return torch.cat([level.mean(dim=(2, 3)) for level in self.encode(x)], dim=1)
