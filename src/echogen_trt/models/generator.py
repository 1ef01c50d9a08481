"""The reference Patch-cGAN generator: a plain encoder-decoder (Abdi et al. 2019, Keras code).

Layer for layer the network that produced the paper's figures (docs/reference.md s. 2): 4x4 convs,
TF-'same' padding, Keras BatchNorm (momentum 0.8 -> PyTorch 0.2, eps 1e-3), glorot-uniform
weights, zero biases, no skips, no dropout, no noise. Depth follows `image_size` so that a 64x64
test model comes from the same code as the 256x256 reference (7 down-blocks at 256, 5 at 64).

Only Conv, ConvTranspose, BatchNormalization, LeakyRelu, Relu and Sigmoid (Concat with skips,
Resize with upsample="resize") appear in the traced graph, so the ONNX export parses in every
TensorRT since 8.5.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.errors import ConfigError
from echogen_trt.models.keras_batchnorm import KerasBatchNorm2d

DECODER_ACTS = ("relu", "leaky")  # "relu": the code; "leaky": the paper's wording
# "transpose": the reference's stride-2 transposed convs; "resize": nearest x2 then a 4x4 conv
# (Odena et al. 2016), an option against the faint period-4 dot grid transposed convs leave.
UPSAMPLES = ("transpose", "resize")
BN_MOMENTUM = 0.2  # Keras momentum 0.8
BN_EPS = 1e-3  # Keras default epsilon

# PyTorch warns that an even 'same' kernel pads a copy of the input; that copy is the TF padding.
warnings.filterwarnings(
    "ignore", message="Using padding='same' with even kernel", category=UserWarning
)


def same_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    """4x4 stride-1 conv with TF 'same' padding: 1 row/col before, 2 after (asymmetric).

    PyTorch's padding="same" puts the odd extra pixel after, exactly like TF; it exports as one
    ONNX Conv (auto_pad SAME_UPPER, or pads [1, 1, 2, 2]) instead of a Pad with computed pads.
    """
    return nn.Conv2d(in_ch, out_ch, 4, 1, padding="same")


def down_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    """4x4 stride-2 conv; TF 'same' pads (1, 1) for even sizes, so the size halves exactly."""
    return nn.Conv2d(in_ch, out_ch, 4, 2, 1)


def up_conv(in_ch: int, out_ch: int, mode: str = "transpose") -> nn.Module:
    """Doubles the size. "transpose": 4x4 stride-2 transposed conv, padding 1 (Keras 'same');
    "resize": nearest-neighbour x2 then a 4x4 'same' conv, which cannot leave the checkerboard
    of uneven kernel overlap (ONNX Resize + Conv, both in every TensorRT since 8.5)."""
    if mode == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), same_conv(in_ch, out_ch))
    return nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1)


def keras_bn(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with Keras' defaults (momentum 0.8 -> 0.2 in PyTorch's convention, eps 1e-3)
    and Keras' running-statistics update (KerasBatchNorm2d)."""
    return KerasBatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def init_keras(module: nn.Module) -> None:
    """Keras initialisation: glorot-uniform kernels, zero biases, BN gamma 1 and beta 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def depth_for(image_size: int) -> int:
    """Number of down-blocks: the bottleneck is always 2x2 (7 at 256, 5 at 64)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ConfigError(
            f"image_size | {image_size} is not supported. Expected a power of two >= 8 "
            f"({REFERENCE_SIZE} is the reference). Hint: pass --image-size {REFERENCE_SIZE} (or 64 "
            "for a quick test)."
        )
    return int(math.log2(image_size)) - 1


def encoder_channels(width: int, n_down: int) -> list[int]:
    """width * (1, 2, 4, 8, 8, 8, 8)[:n_down]."""
    return [width * min(2**i, 8) for i in range(n_down)]


class DownBlock(nn.Module):
    """d_i: Conv 4x4 s2 'same', BN (all but the first), LeakyReLU 0.2."""

    def __init__(self, in_ch: int, out_ch: int, norm: bool) -> None:
        super().__init__()
        self.conv = down_conv(in_ch, out_ch)
        self.bn = keras_bn(out_ch) if norm else nn.Identity()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.bn(self.conv(x)))
        return out


class UpBlock(nn.Module):
    """u_i: ConvTranspose 4x4 s2 (linear), Conv 4x4 s1 'same', activation, then BN (as coded)."""

    def __init__(self, in_ch: int, out_ch: int, act: str, upsample: str = "transpose") -> None:
        super().__init__()
        self.up = up_conv(in_ch, out_ch, upsample)
        self.conv = same_conv(out_ch, out_ch)
        self.act = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)
        self.bn = keras_bn(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bn(self.act(self.conv(self.up(x))))
        return out


class EncoderDecoderGenerator(nn.Module):
    """Mask (N, in_channels, S, S) of raw label values -> echo (N, out_channels, S, S) in [0, 1].

    skips=True concatenates each encoder output onto the decoder input of the same size (U-Net);
    the reference has none. decoder_act="leaky" follows the paper's text instead of the code.
    upsample="resize" replaces the transposed convs by resize-then-convolve (an option; the
    reference uses transposed convs).
    out_bias is the initial bias of the output conv (the logit every pixel starts at): Keras
    starts it at 0 (output 0.5 everywhere); training passes the logit of the mean target
    (train.config output_bias="target_mean") so that no pixel starts on the saturating side of
    the sigmoid. It only sets the initial value; trained weights carry their own bias.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 64,
        image_size: int = REFERENCE_SIZE,
        skips: bool = False,
        decoder_act: str = "relu",
        out_bias: float = 0.0,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLES:
            raise ConfigError(
                f"upsample | unknown value {upsample!r}. Expected one of: {', '.join(UPSAMPLES)}."
            )
        if decoder_act not in DECODER_ACTS:
            raise ConfigError(
                f"decoder_act | unknown value {decoder_act!r}. Expected one of: "
                f"{', '.join(DECODER_ACTS)}."
            )
        if width < 1 or in_channels < 1 or out_channels < 1:
            raise ConfigError(
                f"generator | width, in_channels and out_channels must be >= 1. Got width={width}, "
                f"in_channels={in_channels}, out_channels={out_channels}."
            )
        self.image_size = image_size
        self.skips = skips
        enc = encoder_channels(width, depth_for(image_size))
        self.down = nn.ModuleList(
            DownBlock(c_in, c_out, norm=i > 0)
            for i, (c_in, c_out) in enumerate(zip([in_channels, *enc[:-1]], enc, strict=True))
        )
        dec = enc[-2::-1]  # u1..u6 mirror d6..d1: 8w, 8w, 8w, 4w, 2w, w at 256
        ups: list[nn.Module] = []
        c_in = enc[-1]
        for c_out in dec:
            ups.append(UpBlock(c_in, c_out, decoder_act, upsample))
            c_in = c_out * 2 if skips else c_out
        self.up = nn.ModuleList(ups)
        self.last_up = up_conv(c_in, out_channels, upsample)  # u7, linear
        self.out = same_conv(out_channels, out_channels)
        self.apply(init_keras)
        if self.out.bias is not None:
            nn.init.constant_(self.out.bias, out_bias)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        x = mask
        feats = []
        for block in self.down:
            x = block(x)
            feats.append(x)
        for i, block in enumerate(self.up):
            x = block(x)
            if self.skips:
                x = torch.cat([x, feats[-2 - i]], dim=1)
        return torch.sigmoid(self.out(self.last_up(x)))
