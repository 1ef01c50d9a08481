"""FLOPs per frame of a generator, so measured speed can be set against the hardware's limit.

Two routes that must agree (tests check it):
- `flops_from_onnx`: sum 2 * MACs over every Conv and ConvTranspose node, with shapes from ONNX
  shape inference at batch 1. Torch-free, works for any exported graph (FP32 or FP16), and reads
  no weights (external data is not loaded; initializer dims are enough).
- `flops_from_config`: the same count from `ModelMeta.model_config` (width, image_size,
  in/out_channels, skips), for engines and checkpoints that have no ONNX graph at hand.

Only convolutions are counted (they are > 99.9 % of the work); BN, activations and padding are
memory-bound and left out, as is usual for GFLOP/s figures. The reference (width 64, 256x256)
comes to 8.59 GMAC = 17.2 GFLOP per frame.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.errors import BackendUnavailable, ConfigError, InputMismatch

KERNEL = 4  # every conv in the generator is 4x4
CONV_OPS = ("Conv", "ConvTranspose")


def _conv_macs(out_hw: int, c_in: int, c_out: int) -> int:
    """MACs of a 4x4 conv producing an out_hw x out_hw map (stride 1 or 2)."""
    return out_hw * out_hw * c_out * c_in * KERNEL * KERNEL


def _deconv_macs(in_hw: int, c_in: int, c_out: int) -> int:
    """MACs of a 4x4 transposed conv: every input pixel scatters a c_out x 4 x 4 patch."""
    return in_hw * in_hw * c_in * c_out * KERNEL * KERNEL


def flops_from_config(model_config: dict[str, Any]) -> float:
    """FLOPs (2 * MACs) per frame of `models.generator.EncoderDecoderGenerator(**model_config)`."""
    arch = model_config.get("arch", "encoder_decoder")
    if arch != "encoder_decoder":
        raise ConfigError(
            f"model_config | arch {arch!r} has no FLOP formula. Expected 'encoder_decoder'. "
            "Hint: benchmark its ONNX export, whose graph is counted directly."
        )
    width = int(model_config.get("width", 64))
    size = int(model_config.get("image_size", REFERENCE_SIZE))
    c_in0 = int(model_config.get("in_channels", 1))
    c_out_last = int(model_config.get("out_channels", 1))
    skips = bool(model_config.get("skips", False))
    if size < 8 or size & (size - 1) or width < 1:
        raise ConfigError(
            f"model_config | width={width}, image_size={size} cannot be counted. "
            "Expected width >= 1 and a power-of-two image_size >= 8."
        )
    n_down = int(math.log2(size)) - 1
    enc = [width * min(2**i, 8) for i in range(n_down)]
    macs, hw, c_prev = 0, size, c_in0
    for c in enc:  # d1..dn: stride-2 convs
        hw //= 2
        macs += _conv_macs(hw, c_prev, c)
        c_prev = c
    for c in enc[-2::-1]:  # u1..: transposed conv then a stride-1 'same' conv
        macs += _deconv_macs(hw, c_prev, c)
        hw *= 2
        macs += _conv_macs(hw, c, c)
        c_prev = 2 * c if skips else c
    macs += _deconv_macs(hw, c_prev, c_out_last)  # last_up
    macs += _conv_macs(hw * 2, c_out_last, c_out_last)  # out conv
    return 2.0 * macs


def _dims(value_info: Any) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _fix_batch(model: Any) -> None:
    """Pin every graph input's first (batch) dimension to 1 so inference yields static shapes."""
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1


def flops_from_onnx(path: str | Path) -> float:
    """FLOPs per frame (batch 1): 2 * MACs summed over Conv and ConvTranspose nodes."""
    try:
        import onnx
    except ModuleNotFoundError as err:  # the base install leaves onnx out
        raise BackendUnavailable(
            f"{path} | counting FLOPs from the graph needs onnx. Expected the onnx extra. "
            "Hint: pip install 'echogen-trt[onnx]'."
        ) from err

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError, OSError, ...
        raise InputMismatch(
            f"{path} | cannot be read as ONNX ({err}). Expected an exported model file."
        ) from err
    _fix_batch(model)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {vi.name: _dims(vi) for vi in inferred.graph.value_info}
    shapes.update({vi.name: _dims(vi) for vi in inferred.graph.input})
    shapes.update({vi.name: _dims(vi) for vi in inferred.graph.output})
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in CONV_OPS:
            continue
        w = weights.get(node.input[1]) or shapes.get(node.input[1])
        x, y = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not w or not x or not y or 0 in x or 0 in y:
            raise InputMismatch(
                f"{path} | node {node.name or node.op_type!r}: shapes unknown after shape "
                "inference. Hint: re-export with static spatial dimensions."
            )
        kernel = math.prod(w[2:])
        if node.op_type == "Conv":  # W: (C_out, C_in/group, kh, kw); MACs per output element
            total += math.prod(y) * w[1] * kernel
        else:  # ConvTranspose W: (C_in, C_out/group, kh, kw); MACs per input element
            total += math.prod(x) * w[1] * kernel
    return 2.0 * total
