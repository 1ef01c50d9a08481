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

from echogen_trt.errors import EngineBuildError
from echogen_trt.runtime.backends.tensorrt import dims, make_logger, numpy_dtype

if TYPE_CHECKING:
    import tensorrt as trt_t

log = logging.getLogger(__name__)

# Data movement has no compute precision; these opaque kinds hide their internals.
_MOVEMENT = {"Reformat", "NoOp", "Shuffle", "Constant", "Identity", "Slice", "Cast"}
_OPAQUE = ("Myelin", "kgen", "ForeignNode", "DLA")


def _tensor_precision(tensor: dict[str, Any]) -> str:
    text = " ".join(str(tensor.get(k, "")) for k in ("DataType", "Format/Datatype", "Format"))
    for token, name in (("BFloat16", "bf16"), ("BF16", "bf16"), ("FP16", "fp16"),
                        ("Half", "fp16"), ("FP8", "fp8"), ("Int8", "int8"), ("INT8", "int8"),
                        ("FP32", "fp32"), ("Float", "fp32")):  # fmt: skip
        if token in text:
            return name
    return "other"


def layer_precisions(engine_info: str) -> dict[str, int]:
    """Count compute layers by precision from the inspector's JSON (10.x and 11.x schemas).

    A layer counts as fp16 when any of its tensors is; data-movement layers are skipped;
    opaque layers (Myelin, DLA) are counted as "opaque"; names-only output as "unknown".
    """
    counts: Counter[str] = Counter()
    for layer in json.loads(engine_info).get("Layers", []):
        if not isinstance(layer, dict):
            counts["unknown"] += 1
            continue
        kind = str(layer.get("LayerType", ""))
        if kind in _MOVEMENT:
            continue
        if any(word in kind or word in str(layer.get("Name", "")) for word in _OPAQUE):
            counts["opaque"] += 1
            continue
        found = {_tensor_precision(t) for t in layer.get("Inputs", []) + layer.get("Outputs", [])}
        best = next((p for p in ("fp16", "bf16", "int8", "fp8", "fp32") if p in found), "other")
        counts[best] += 1
    return dict(counts)


def check_precision(
    counts: dict[str, int], precision: str, min_fraction: float, source: str
) -> None:
    """EngineBuildError when an fp16 build came out with (almost) no FP16 compute layers."""
    if precision != "fp16":
        return
    judged = sum(n for p, n in counts.items() if p not in ("opaque", "unknown"))
    if judged == 0:
        log.warning("%s: could not verify the FP16 layer share (layers: %s)", source, counts)
        return
    share = counts.get("fp16", 0) / judged
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
    logger = make_logger(trt)
    runtime: trt_t.Runtime = trt.Runtime(logger)
    engine: trt_t.ICudaEngine | None = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise EngineBuildError(f"{source} | the engine just built cannot be deserialized.")
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
    return io, layer_precisions(info)
