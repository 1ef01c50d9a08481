"""FP16 ONNX from the FP32 graph, with the FP32 (or uint8) inputs and outputs kept.

Why an FP16-typed file rather than TensorRT's FP16 flag: TensorRT 11 removed
`BuilderFlag.FP16` and builds every network strongly typed, so the precision must be in the ONNX
types. One FP16 file serves TensorRT 10 (strongly typed or not) and 11, and ONNX Runtime.

onnxconverter-common's `convert_float_to_float16(keep_io_types=True)` converts every float
initializer and value (Conv/ConvTranspose weights, BatchNormalization scale/bias/mean/var,
LeakyRelu/Relu/Sigmoid run in FP16) and puts a Cast at the graph's float input and output. It does
not retarget existing Cast nodes, so in the uint8 fused graph the uint8 -> float Cast would still
produce float32 while its consumers were declared float16 (an invalid model): `_retarget_casts`
points such Casts at float16. The uint8 output Cast needs nothing.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import replace

import onnx

from echogen_trt.artifacts.onnx_file import load_model, read_meta
from echogen_trt.artifacts.precision import FP16, FP32
from echogen_trt.errors import ExportError
from echogen_trt.export.export_result import ExportResult, save_export

log = logging.getLogger(__name__)

FP16_MAX = 65504.0  # largest finite float16: clamp only what FP16 cannot hold


def _converter() -> object:
    try:
        from onnxconverter_common import float16
    except ImportError as err:
        raise ExportError(
            "onnxconverter-common | not installed; it converts the FP32 graph to FP16. "
            "Hint: `pip install 'echogen-trt[train]'`."
        ) from err
    return float16


def _retarget_casts(model: onnx.ModelProto) -> int:
    """Cast(to=FLOAT) whose output the converter declared FLOAT16 -> Cast(to=FLOAT16)."""
    declared = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Cast" or declared.get(node.output[0]) != onnx.TensorProto.FLOAT16:
            continue
        for attr in node.attribute:
            if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT:
                attr.i = onnx.TensorProto.FLOAT16
                changed += 1
    return changed


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """FP16 copy of an FP32 model with its input/output types kept; metadata is left as is."""
    float16 = _converter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted: onnx.ModelProto = float16.convert_float_to_float16(  # type: ignore[attr-defined]
            model, keep_io_types=True, max_finite_val=FP16_MAX
        )
    for warning in caught:  # values clamped to FP16's range are worth a log line, not a failure
        log.debug("fp16 conversion: %s", warning.message)
    if caught:
        log.info(
            "fp16 conversion: %d tensors had values clamped to FP16's range (-vv lists them)",
            len(caught),
        )
    retargeted = _retarget_casts(converted)
    if retargeted:
        log.debug("fp16 conversion: %d Cast node(s) retargeted to float16", retargeted)
    try:
        onnx.shape_inference.infer_shapes(converted, check_type=True, strict_mode=True)
    except Exception as err:
        raise ExportError(
            f"FP16 conversion | produced an inconsistent graph: {str(err).splitlines()[0]}. "
            "Hint: export FP32 and let TensorRT < 11 build FP16 with its builder flag."
        ) from err
    return converted


def convert_file_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> ExportResult:
    """Write the FP16 version of an exported FP32 file (metadata precision set to "fp16")."""
    start = time.perf_counter()
    model = load_model(src)
    meta = read_meta(model)
    if meta.precision != FP32:
        raise ExportError(
            f"ONNX file {os.fspath(src)} | is already {meta.precision}. Expected an FP32 export. "
            "Hint: convert the FP32 file (`echogen-trt export --precision fp32`)."
        )
    converted = convert_to_fp16(model)
    return save_export(converted, replace(meta, precision=FP16), dst, start)
