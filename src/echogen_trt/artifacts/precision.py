"""Precision names and defaults: decided here once, for `export`, `build-engine` and the bench.

A precision names the weights and compute of an ONNX file or engine; inputs and outputs keep
their own types (float32 or uint8). The two commands default differently, on purpose:

- `export` defaults to fp32 (`EXPORT_DEFAULT`): the FP32 file is the reference, verified against
  the torch generator to 1e-4, and every other file (the FP16 ONNX, each engine) is derived from
  it. TensorRT 8.5-10.x build an FP16 engine from it with the FP16 builder flag.
- `build-engine` defaults to fp16 (`ENGINE_DEFAULT`): an engine is built to run fast on the GPU
  that builds it, and every supported GPU (desktop, Jetson) has fast FP16. fp32 is the
  reference engine, asked for by name.
"""

from __future__ import annotations

from echogen_trt.errors import ConfigError

FP32, FP16 = "fp32", "fp16"
PRECISIONS = (FP32, FP16)  # of an ONNX file and of an engine
BOTH = "both"  # export only: the FP32 file and its FP16 sibling, converted from it
INT8 = "int8"  # export only: quantized after calibration (OpenVINO IR or ONNX Runtime QDQ ONNX)
# export only: an OpenVINO IR (FP32 weights) that OpenVINO computes in bfloat16 on CPUs with
# avx512_bf16 or AMX; recorded in the IR's metadata, so only such a file ever runs in BF16.
BF16 = "bf16"
EXPORT_DEFAULT = FP32
ENGINE_DEFAULT = FP16

# What each command accepts, its default listed first (the order --help and errors show).
EXPORT_CHOICES = (EXPORT_DEFAULT, *(p for p in PRECISIONS if p != EXPORT_DEFAULT), BOTH, INT8, BF16)
ENGINE_CHOICES = (ENGINE_DEFAULT, *(p for p in PRECISIONS if p != ENGINE_DEFAULT))


def validate_precision(
    value: str, subject: str = "precision", choices: tuple[str, ...] = PRECISIONS
) -> str:
    """`value` when it is one of `choices`, else ConfigError naming `subject` (an option)."""
    if value not in choices:
        raise ConfigError(f"{subject} | unknown {value!r}. Expected one of: {', '.join(choices)}.")
    return value
