"""Generator -> ONNX file that TensorRT 8.5 to 11 and ONNX Runtime all parse.

Exporter choice: torch's dynamo exporter (`torch.onnx.export(dynamo=True)`, the default since
torch 2.9). The legacy TorchScript exporter (`dynamo=False`) still runs in torch 2.13 but raises
two DeprecationWarnings ("The feature will be removed"), leaves an Identity node per folded
BatchNorm input (22 in the 64x64 model), and exports an explicit asymmetric pad (`ZeroPad2d`) as a
Pad fed by a shape subgraph (ConstantOfShape, Reshape, Slice, Transpose, Cast) that its constant
folding cannot fold. The dynamo exporter's optimizer folds pads into Conv `pads` and BatchNorm
into the preceding Conv, leaving only Conv, ConvTranspose, BatchNormalization (after ReLU, not
foldable), LeakyRelu, Relu and Sigmoid. It emits opset 18 at least, so the optimized graph is
lowered to the requested opset (17 by default, the newest TensorRT 8.5 on JetPack 5 parses) with
`onnx.version_converter`; none of these ops changed between 17 and 18. The tests prove the result
(checker, TensorRT op list, ORT vs torch, dynamic batch).

torch is imported inside the functions that need it. ONNX files and their metadata are read and
written by `artifacts.onnx_file` (shared with the TensorRT builder and the torch-free runtime).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from echogen_trt.artifacts.model_meta import ModelMeta, meta_from_checkpoint_info
from echogen_trt.artifacts.onnx_file import opset_of
from echogen_trt.artifacts.precision import BOTH, EXPORT_DEFAULT, FP16, FP32, validate_precision
from echogen_trt.errors import ConfigError, ExportError
from echogen_trt.export.export_result import ExportResult, save_export
from echogen_trt.export.fp16 import convert_file_fp16, convert_to_fp16
from echogen_trt.export.verify import verify_onnx
from echogen_trt.fileio import check_output_path
from echogen_trt.runtime.registry import ONNX_SUFFIX

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Where/Equal/Round/Clip with tensor bounds; TensorRT 8.5 parses 7..17
DYNAMO_MIN_OPSET = 18  # the dynamo exporter's lowest implemented opset
QUIET_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


# --- file names ----------------------------------------------------------------------------


def fp16_path_for(path: str | os.PathLike[str]) -> Path:
    """model.onnx -> model.fp16.onnx, the FP16 sibling `--precision both` writes."""
    path = Path(path)
    return path.with_name(f"{path.stem}.fp16{path.suffix or ONNX_SUFFIX}")


# --- export (torch) ------------------------------------------------------------------------


def _check_options(precision: str, batch: int | None, opset: int) -> None:
    validate_precision(precision)
    if batch is not None and batch < 1:
        raise ConfigError(f"batch | must be >= 1, got {batch}. Hint: omit it for a dynamic batch.")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ConfigError(
            f"opset | {opset} is not supported. Expected {MIN_OPSET}..{newest} "
            f"({DEFAULT_OPSET} parses in TensorRT 8.5 to 11)."
        )


def with_fused_io(generator: nn.Module, kept_labels: Sequence[int]) -> nn.Module:
    """Wrap `generator` so the graph maps uint8 (N, H, W) raw labels to uint8 (N, H, W) frames.

    Inside the graph: labels not in `kept_labels` (any value, also > 3) become 0, the mask is cast
    to float, and the output is round(clip(255 * y, 0, 255)). The comparisons run on float32
    (Cast, Equal, Or, Where): TensorRT's Equal takes no uint8.
    """
    import torch

    kept = tuple(float(k) for k in kept_labels)
    if not kept:
        raise ConfigError("kept_labels | empty. Expected at least one of 1, 2, 3.")

    class FusedIO(torch.nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.generator = inner

        def forward(self, mask: torch.Tensor) -> torch.Tensor:
            x = mask.to(torch.float32)
            keep = x == kept[0]
            for label in kept[1:]:
                keep = keep | (x == label)
            x = torch.where(keep, x, torch.zeros((), dtype=torch.float32)).unsqueeze(1)
            y = self.generator(x).squeeze(1)
            return torch.round(torch.clamp(y * 255.0, 0.0, 255.0)).to(torch.uint8)

    return FusedIO(generator).eval()


def _example_input(meta: ModelMeta, batch: int | None, fused_io: bool) -> Any:
    import torch

    h, w = meta.input_size
    n = batch if batch is not None else 2  # 2, not 1: the exporter specialises size-1 dims
    if fused_io:
        return torch.zeros((n, h, w), dtype=torch.uint8)
    return torch.zeros((n, 1, h, w), dtype=torch.float32)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's INFO pass logs, torchvision notices and internal warnings."""
    levels = {name: logging.WARNING for name in QUIET_LOGGERS}
    levels["torch.onnx._internal.exporter._registration"] = logging.ERROR  # "no torchvision"
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        if logging.getLogger(name).getEffectiveLevel() < level:
            logging.getLogger(name).setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*padding='same'.*", category=UserWarning)
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _torch_to_onnx(module: nn.Module, example: Any, batch: int | None) -> onnx.ModelProto:
    """Run the dynamo exporter (optimized, opset 18) without printing."""
    import torch

    if importlib.util.find_spec("onnxscript") is None:
        raise ExportError(
            "onnxscript | not installed; torch's ONNX exporter needs it. "
            "Hint: `pip install 'echogen-trt[train]'` or `pip install onnxscript`."
        )
    dynamic = None if batch is not None else ({0: torch.export.Dim("batch", min=1)},)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                module,
                (example,),
                None,
                input_names=[ModelMeta.input_name],
                output_names=[ModelMeta.output_name],
                opset_version=DYNAMO_MIN_OPSET,
                dynamo=True,
                dynamic_shapes=dynamic,
                optimize=True,
                verbose=False,
            )
    except Exception as err:  # torch.export raises many types; all mean "cannot export"
        raise ExportError(
            f"generator | torch.onnx.export failed: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}. Hint: run with -vv for the trace."
        ) from err
    assert program is not None  # dynamo=True with f=None always returns the program
    return program.model_proto


def _lower_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """Convert the exporter's opset-18 graph down to `opset` (no-op when already there)."""
    current = opset_of(model)
    if current == opset:
        return model
    try:
        return onnx.version_converter.convert_version(model, opset)
    except Exception as err:
        raise ExportError(
            f"opset | the exported graph cannot be converted from opset {current} to {opset}: "
            f"{str(err).splitlines()[-1]}. Hint: pass --opset {current} (TensorRT >= 8.6)."
        ) from err


def _generator_size(generator: nn.Module) -> int | None:
    size = getattr(generator, "image_size", None)
    return int(size) if isinstance(size, int) else None


def export_onnx(
    generator: nn.Module,
    out_path: str | os.PathLike[str],
    *,
    meta: ModelMeta,
    precision: str = EXPORT_DEFAULT,
    batch: int | None = None,
    fused_io: bool = False,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    """Export `generator` (eval mode, FP32 on CPU) to one ONNX file with `meta` in its metadata.

    batch=None gives a dynamic batch axis named "batch"; an int fixes it. fused_io=True takes
    uint8 (N, H, W) raw labels and returns uint8 frames (see `with_fused_io`). precision="fp16"
    converts the FP32 graph and keeps FP32 (or uint8) inputs and outputs (see `export.fp16`).
    """
    _check_options(precision, batch, opset)
    size = _generator_size(generator)
    if size is not None and (size, size) != tuple(meta.input_size):
        raise ExportError(
            f"generator | image_size is {size}, but meta.input_size is {tuple(meta.input_size)}. "
            f"Expected them to agree. Hint: build meta with input_size=({size}, {size})."
        )
    start = time.perf_counter()
    module = copy.deepcopy(generator).cpu().float().eval()  # the caller's model is untouched
    meta = replace(meta, io="uint8" if fused_io else "float", precision=precision)
    if fused_io:
        module = with_fused_io(module, meta.kept_labels)
    model = _torch_to_onnx(module, _example_input(meta, batch, fused_io), batch)
    model = _lower_opset(model, opset)
    if precision == FP16:
        model = convert_to_fp16(model)
    result = save_export(model, meta, out_path, start)
    log.info(
        "wrote %s (%s, io=%s, %.1f MB) in %.1f s",
        *(out_path, precision, meta.io, result.size_bytes / 1e6, result.seconds),
    )
    return result


def export_checkpoint(
    ckpt_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    precision: str = EXPORT_DEFAULT,
    batch: int | None = None,
    fused_io: bool = False,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    masks: np.ndarray | None = None,
) -> list[ExportResult]:
    """Export a training checkpoint's generator, with the provenance `ModelMeta` records.

    precision "fp32" or "fp16" writes `out_path`; "both" writes `out_path` (FP32) and its
    `fp16_path_for` sibling, converted from the FP32 file. verify=True runs `verify_onnx` against
    the checkpoint's torch generator on each file and raises `VerificationFailed` (an ExportError
    carrying the report) when a check fails; the file stays on disk for inspection.
    """
    from echogen_trt.train.checkpoint import load_generator

    outputs = [out_path, fp16_path_for(out_path)] if precision == BOTH else [out_path]
    for out in outputs:
        check_output_path(out, inputs=[ckpt_path], suffixes=(ONNX_SUFFIX,), what="ONNX output")
    generator, info = load_generator(ckpt_path)
    meta = meta_from_checkpoint_info(info, fused_io=fused_io)
    first = FP32 if precision == BOTH else precision
    results = [
        export_onnx(
            generator,
            out_path,
            meta=meta,
            precision=first,
            batch=batch,
            fused_io=fused_io,
            opset=opset,
        )
    ]
    if precision == BOTH:
        results.append(convert_file_fp16(out_path, fp16_path_for(out_path)))
    if verify:
        for result in results:
            result.verify = verify_onnx(result.path, reference=generator, masks=masks)
    return results
