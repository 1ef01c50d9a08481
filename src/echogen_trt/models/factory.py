"""Build the networks from a plain dict (`model_config`), the form checkpoints and ONNX carry.

`build_generator(**info["model_config"])` rebuilds a trained generator from its checkpoint alone.
A flat name -> class table, as in pix2pix's `define_G`: an unknown name or option raises
ConfigError listing the valid ones.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from echogen_trt.errors import ConfigError
from echogen_trt.models.discriminator import Discriminator
from echogen_trt.models.generator import EncoderDecoderGenerator

GENERATORS: dict[str, type[nn.Module]] = {
    # the reference (skips=False); skips=True makes it a U-Net
    "encoder_decoder": EncoderDecoderGenerator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "patchgan": Discriminator,
}


def _constructor_args(kind: str, table: dict[str, type[nn.Module]], arch: str) -> dict[str, Any]:
    """Constructor options of `arch` with their defaults; ConfigError naming the valid archs."""
    if arch not in table:
        raise ConfigError(
            f"{kind} arch | unknown name {arch!r}. Expected one of: {', '.join(table)}."
        )
    params = inspect.signature(table[arch].__init__).parameters
    return {n: p.default for n, p in params.items() if n != "self"}


def _check_options(kind: str, arch: str, valid: dict[str, Any], options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"{kind} config | unknown option(s) {', '.join(unknown)} for {arch!r}. "
            f"Expected some of: arch, {', '.join(valid)}."
        )


def generator_config(arch: str = "encoder_decoder", **options: Any) -> dict[str, Any]:
    """The complete model_config (every constructor default filled in), as checkpoints store it."""
    valid = _constructor_args("generator", GENERATORS, arch)
    _check_options("generator", arch, valid, options)
    return {"arch": arch, **valid, **options}


def build_generator(arch: str = "encoder_decoder", **options: Any) -> nn.Module:
    """A generator from model_config, e.g. build_generator(width=4, image_size=64)."""
    _check_options("generator", arch, _constructor_args("generator", GENERATORS, arch), options)
    return GENERATORS[arch](**options)


def build_discriminator(arch: str = "patchgan", **options: Any) -> nn.Module:
    """A discriminator, e.g. build_discriminator(width=4)."""
    valid = _constructor_args("discriminator", DISCRIMINATORS, arch)
    _check_options("discriminator", arch, valid, options)
    return DISCRIMINATORS[arch](**options)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, BN running-statistic elements), as docs/reference.md quotes."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(
        b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    return trainable, stats
