"""What differs between TensorRT 8.5, 10.x and 11.x when building: the only version branches.

- 8.5-10.x, FP32 ONNX: weakly typed network + BuilderFlag.FP16 (8.x also needs EXPLICIT_BATCH).
- 10.x, FP16-typed ONNX: strongly typed network (STRONGLY_TYPED), no FP16 flag.
- 11.x: no BuilderFlag.FP16 any more, every network is strongly typed: FP16 needs the FP16 ONNX.
- 11.0-11.3 have no DLA at all.

Never both: TensorRT 10 rejects the FP16 flag on a strongly typed network, and on 11 code that
"sets FP16 if the flag exists" silently builds FP32 (so the builder checks every FP16 engine
afterwards, `trt_inspect.check_precision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from echogen_trt.artifacts.precision import FP16, FP32
from echogen_trt.errors import EngineBuildError, InternalError
from echogen_trt.runtime.gpu.trt_api import trt_version


@dataclass(frozen=True)
class TypingPlan:
    """How this build gets its precision: which network flags and builder flags."""

    strongly_typed: bool
    fp16_flag: bool
    explicit_batch: bool


def typing_plan(
    version: tuple[int, int], precision: str, onnx_precision: str, source: str
) -> TypingPlan:
    """Strong or weak typing, FP16 flag or not: the only place the versions differ."""
    major = version[0]
    if precision == FP32 and onnx_precision == FP16:
        raise EngineBuildError(
            f"{source} | is an FP16 ONNX, but an fp32 engine was asked for. Expected an FP32 "
            "ONNX. Hint: build from the FP32 export, or pass --precision fp16."
        )
    if major >= 11:
        if precision == FP16 and onnx_precision != FP16:
            raise EngineBuildError(
                f"{source} | is an {onnx_precision.upper()} ONNX, but TensorRT "
                f"{major}.{version[1]} has no BuilderFlag.FP16 (every network is strongly "
                "typed), so an fp16 engine needs an FP16-typed ONNX. Hint: export one with "
                "`echogen-trt export --precision fp16` and build from that file."
            )
        return TypingPlan(strongly_typed=True, fp16_flag=False, explicit_batch=False)
    if major >= 10 and onnx_precision == FP16:
        return TypingPlan(strongly_typed=True, fp16_flag=False, explicit_batch=False)
    # 8.x has no strong typing: an FP16 ONNX is built weakly typed, the FP16 flag allowing it.
    return TypingPlan(strongly_typed=False, fp16_flag=precision == FP16, explicit_batch=major < 10)


def network_flags(trt: Any, version: tuple[int, int], plan: TypingPlan) -> int:
    """create_network flags. 11.x networks are strongly typed by default: no flag needed."""
    if plan.strongly_typed and plan.fp16_flag:
        raise InternalError("typing plan sets FP16 on a strongly typed network")
    flags = 0
    if plan.explicit_batch:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.strongly_typed and version[0] < 11:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def require_dla(trt: Any) -> None:
    """TensorRT 11.0-11.3 have no DLA at all (NVIDIA's 10.x -> 11.x Jetson migration guide)."""
    version = trt_version(trt)
    if (11, 0) <= version <= (11, 3):
        raise EngineBuildError(
            f"--dla-core | TensorRT {trt.__version__} has no DLA support (DLA is absent in "
            "TensorRT 11.0-11.3). Expected TensorRT 10.x (JetPack 6) or 11.4.1+ on JetPack "
            "7.2.2+. Hint: drop --dla-core to build for the GPU."
        )
