"""The `trtexec` command line that builds the same engine as `build-engine`, so a user can
rebuild with NVIDIA's own tool and compare (speed, layer precisions, a suspected bug of ours).

Flags as trtexec's --help documents them (TensorRT 8.5 to 10.x): --onnx, --saveEngine,
--stronglyTyped (10.x; 11.x networks are strongly typed anyway), --fp16 (weakly typed FP16),
--noTF32 (our fp32 engines clear TF32), --minShapes/--optShapes/--maxShapes (`name:1x1x256x256`),
--memPoolSize=workspace:N (a bare N is MiB in every version; 8.5 knows no unit suffix),
--timingCacheFile, --useDLACore with --allowGPUFallback, --profilingVerbosity=detailed, and
--skipInference (8.6+; --buildOnly before). Torch-free and TensorRT-free.
"""

from __future__ import annotations

import shlex

from echogen_trt.artifacts.precision import FP32
from echogen_trt.artifacts.provenance import BuildOptions
from echogen_trt.export.trt_version_policy import TypingPlan


def trtexec_command(
    onnx_path: str,
    engine_path: str,
    opts: BuildOptions,
    plan: TypingPlan,
    shapes: dict[str, dict[str, list[int]]] | None,
    version: tuple[int, int],
) -> str:
    """One shell line; `shapes` (input -> min/opt/max) only when the ONNX has dynamic inputs."""
    args = [f"--onnx={onnx_path}", f"--saveEngine={engine_path}"]
    if plan.strongly_typed and version[0] < 11:
        args.append("--stronglyTyped")
    if plan.fp16_flag:
        args.append("--fp16")
    if opts.precision == FP32:
        args.append("--noTF32")
    for key in ("min", "opt", "max"):
        if shapes:
            spec = ",".join(f"{name}:{'x'.join(map(str, s[key]))}" for name, s in shapes.items())
            args.append(f"--{key}Shapes={spec}")
    args.append(f"--memPoolSize=workspace:{opts.workspace_mb}")
    if opts.timing_cache:
        args.append(f"--timingCacheFile={opts.timing_cache}")
    if opts.dla_core is not None:
        args += [f"--useDLACore={opts.dla_core}", "--allowGPUFallback"]
    args.append("--profilingVerbosity=detailed")
    args.append("--skipInference" if version >= (8, 6) else "--buildOnly")
    return " ".join(["trtexec", *(shlex.quote(a) for a in args)])
