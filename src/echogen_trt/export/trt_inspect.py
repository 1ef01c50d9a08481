"""Inspect a freshly built TensorRT engine: its I/O tensors and the precision of its layers.

The check that matters: an FP16 build whose layers came out (almost) all FP32 is an error. On
TensorRT 11 code that sets FP16 "if the flag exists" silently builds FP32; the engine inspector's
JSON (10.x and 11.x schemas) is the only honest witness.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from echogen_trt.artifacts.precision import FP16
from echogen_trt.errors import EngineBuildError
from echogen_trt.runtime.gpu.trt_api import dims, numpy_dtype, shared_logger, trt_errors

if TYPE_CHECKING:
    import tensorrt as trt_t

log = logging.getLogger(__name__)

# Data movement has no compute precision. Fused kinds (Myelin's ForeignNode/kgen, DLA) do
# report their boundary tensors, but FP32 network I/O on them says nothing about the inside.
_MOVEMENT = {"reformat", "noop", "shuffle", "constant", "identity", "slice", "cast"}
_FUSED = ("myelin", "foreignnode", "kgen", "dla")
_TOKENS = (("bfloat16", "bf16"), ("bf16", "bf16"), ("fp16", "fp16"), ("half", "fp16"),
           ("fp8", "fp8"), ("uint8", "other"), ("int8", "int8"), ("fp32", "fp32"),
           ("float", "fp32"))  # fmt: skip
_LOW = ("fp16", "bf16", "int8", "fp8")


def _tensor_precision(tensor: Any) -> str:
    """Precision named by a tensor's type keys, whatever their spelling ("Format/Datatype" in
    8.x-10.x, "Datatype"/"DataType" and "Format" in 11.x); never by its name."""
    if not isinstance(tensor, dict):
        return "other"
    text = " ".join(
        str(value)
        for key, value in tensor.items()
        if "type" in key.lower() or "format" in key.lower()
    ).lower()
    return next((name for token, name in _TOKENS if token in text), "other")


def layer_precisions(engine_info: str) -> dict[str, int]:
    """Count compute layers by precision from the inspector's JSON (any 8.5-11.x schema).

    A layer counts as fp16 (bf16, ...) when any of its tensors is; data-movement layers are
    skipped; a fused layer (Myelin, DLA) without a low-precision tensor counts as "fused"
    (unknown inside, not FP32 evidence); a layer without type information as "unknown".
    """
    counts: Counter[str] = Counter()
    for layer in json.loads(engine_info).get("Layers", []):
        if not isinstance(layer, dict):
            counts["unknown"] += 1
            continue
        fields = {str(k).lower(): v for k, v in layer.items()}
        kind, name = str(fields.get("layertype", "")).lower(), str(fields.get("name", "")).lower()
        if kind in _MOVEMENT:
            continue
        tensors = list(fields.get("inputs") or []) + list(fields.get("outputs") or [])
        found = {_tensor_precision(t) for t in tensors}
        best = next((p for p in (*_LOW, "fp32") if p in found), None)
        if any(word in kind or word in name for word in _FUSED) and best not in _LOW:
            counts["fused"] += 1
        else:
            counts[best or "unknown"] += 1
    return dict(counts)


def check_precision(
    counts: dict[str, int], precision: str, min_fraction: float, source: str
) -> None:
    """EngineBuildError when an fp16 build has positive evidence of FP32 compute: known-FP32
    layers, and FP16 ones below `min_fraction` of the layers whose precision is known."""
    if precision != FP16:
        return
    judged = sum(counts.get(p, 0) for p in (*_LOW, "fp32"))
    if judged == 0:
        log.warning("%s: could not verify the FP16 layer share (layers: %s)", source, counts)
        return
    share = sum(counts.get(p, 0) for p in _LOW) / judged
    if share < min_fraction:
        raise EngineBuildError(
            f"{source} | silent FP32 build: only {counts.get('fp16', 0)} of {judged} compute "
            f"layers run in FP16 (layers by precision: {counts}). Expected at least "
            f"{min_fraction:.0%}. Hint: on TensorRT 11 build from the FP16 ONNX "
            "(`echogen-trt export --precision fp16`); elsewhere check that the GPU has fast FP16."
        )
    log.info("layer precisions: %s (%.0f%% FP16)", counts, 100 * share)


def inspect_engine(
    trt: Any, data: bytes, source: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Deserialize the fresh engine: its I/O tensors and layer precision counts."""
    logger = shared_logger(trt)
    runtime: trt_t.Runtime = trt.Runtime(logger)
    with trt_errors(logger) as errors:
        engine: trt_t.ICudaEngine | None = runtime.deserialize_cuda_engine(data)
    if engine is None:
        said = "; ".join(errors) or "no message"
        raise EngineBuildError(f"{source} | the engine just built cannot be deserialized ({said}).")
    io = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        io.append({
            "name": name,
            "mode": engine.get_tensor_mode(name).name.lower(),
            "dtype": numpy_dtype(engine.get_tensor_dtype(name), name).name,
            "shape": list(dims(engine.get_tensor_shape(name))),
        })  # fmt: skip
    inspector: trt_t.EngineInspector = engine.create_engine_inspector()
    info = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    # TensorRT 8.5's binding has no keep-alive from the inspector to the engine: free the
    # inspector first, then the engine, then the runtime (the caller holds the CUDA binding)
    del inspector
    del engine
    del runtime
    return io, layer_precisions(info)
