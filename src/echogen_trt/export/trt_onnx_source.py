"""The ONNX file an engine is built from: its bytes, hash, metadata and graph inputs, and the
optimization-profile shapes they need (batch from the build options, H and W from the metadata).

TensorRT 11 has no FP16 builder flag: an fp16 engine needs an FP16-typed ONNX. Given the FP32
export, `fp16_source` takes its verified `.fp16.onnx` sibling (what `export --precision both`
writes) or converts the FP32 file with the export's own converter, and either way gates it with
the export's PSNR check against the FP32 file run by ONNX Runtime. So `build-engine model.onnx`
reads the same on every TensorRT version, and the provenance says which file was built.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import read_meta
from echogen_trt.artifacts.precision import FP16
from echogen_trt.artifacts.provenance import BuildOptions
from echogen_trt.errors import EngineBuildError, ExportError
from echogen_trt.fileio import check_outputs, sha256_file
from echogen_trt.runtime.registry import ONNX_SUFFIX

# How the ONNX that TensorRT parsed relates to the file named on the command line (provenance).
AS_GIVEN = "as-given"  # the named file itself
FP16_SIBLING = "fp16-sibling"  # its `.fp16.onnx` sibling, checked with the PSNR gate
FP16_CONVERTED = "fp16-converted"  # converted here from the FP32 file, PSNR-gated, written

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxTensor:
    name: str
    shape: tuple[int | None, ...]  # None for a dynamic dimension
    dtype: str  # numpy dtype name


@dataclass(frozen=True)
class OnnxInfo:
    path: Path
    data: bytes
    sha256: str
    meta: ModelMeta
    inputs: tuple[OnnxTensor, ...]


@dataclass(frozen=True)
class BuiltFrom:
    """The file TensorRT parsed, and why that one: recorded in the provenance."""

    kind: str  # AS_GIVEN, FP16_SIBLING or FP16_CONVERTED
    path: str
    sha256: str
    psnr_db: float | None = None  # the FP16 gate's PSNR against the FP32 file, when gated


def read_onnx(path: str | os.PathLike[str]) -> OnnxInfo:
    """Bytes, hash, ModelMeta and graph inputs of an exported ONNX file."""
    path = Path(path)
    if not path.is_file():
        raise EngineBuildError(
            f"{path} | ONNX file not found. Hint: export one with `echogen-trt export`."
        )
    return _parse_onnx(path, path.read_bytes())


def _parse_onnx(path: Path, data: bytes) -> OnnxInfo:
    import onnx
    from onnx import helper

    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf raises its own DecodeError
        raise EngineBuildError(f"{path} | not a readable ONNX file ({err}).") from err
    meta = read_meta(model, source=str(path))
    initializers = {init.name for init in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        inputs.append(OnnxTensor(value.name, dims, dtype))
    return OnnxInfo(path, data, sha256_file(path), meta, tuple(inputs))


def as_given(info: OnnxInfo) -> BuiltFrom:
    return BuiltFrom(AS_GIVEN, str(info.path.resolve()), info.sha256)


def fp16_source(fp32: OnnxInfo, engine_path: Path) -> tuple[OnnxInfo, BuiltFrom]:
    """The FP16-typed ONNX for an fp16 engine from the FP32 export `fp32` (TensorRT 11.x).

    The `.fp16.onnx` sibling when it exists (it must pass the PSNR gate: a stale or foreign
    sibling is an error, never silently used or replaced); else `fp32` converted with the
    export's converter, gated, and written beside the engine as `<engine stem>.fp16.onnx`.
    """
    from echogen_trt.export.onnx_export import fp16_path_for

    sibling = fp16_path_for(fp32.path)
    if sibling.is_file():
        info = read_onnx(sibling)
        _check_pair(fp32, info)
        psnr = _gate(fp32, info.path)
        return info, BuiltFrom(FP16_SIBLING, str(sibling.resolve()), info.sha256, psnr)
    target = fp16_path_for(engine_path.with_suffix(ONNX_SUFFIX))
    check_outputs({"FP16 ONNX": target}, inputs={f"ONNX input {fp32.path}": fp32.path})
    _convert(fp32, target)
    try:
        psnr = _gate(fp32, target)
    except EngineBuildError:
        target.unlink(missing_ok=True)  # a converted file that failed its gate is not kept
        raise
    info = read_onnx(target)
    log.info("converted %s to FP16: %s (PSNR %.1f dB vs FP32)", fp32.path, target, psnr)
    return info, BuiltFrom(FP16_CONVERTED, str(target.resolve()), info.sha256, psnr)


def _check_pair(fp32: OnnxInfo, fp16: OnnxInfo) -> None:
    """The sibling must be the same model in FP16: same metadata but for the precision."""
    same = {k: v for k, v in asdict(fp32.meta).items() if k != "precision"}
    other = asdict(fp16.meta)
    differ = sorted(k for k in same if same[k] != other.get(k))
    if fp16.meta.precision != FP16 or differ:
        what = f"differs in {', '.join(differ)}" if differ else f"is {fp16.meta.precision}"
        raise EngineBuildError(
            f"{fp16.path} | the FP16 sibling of {fp32.path} {what}. Expected the FP16 export of "
            "the same model. Hint: re-export both with `echogen-trt export --precision both`, "
            "or move the stale file away so build-engine converts the FP32 file itself."
        )


def _convert(fp32: OnnxInfo, target: Path) -> None:
    import onnx

    from echogen_trt.export.export_result import save_export
    from echogen_trt.export.fp16 import convert_to_fp16

    start = time.perf_counter()
    try:
        converted = convert_to_fp16(onnx.load_model_from_string(fp32.data))
    except ExportError as err:
        raise EngineBuildError(
            f"{fp32.path} | TensorRT 11 needs an FP16-typed ONNX for an fp16 engine, and it "
            f"could not be made here: {err} Alternatively build from the FP16 export "
            "(`echogen-trt export --precision both` writes model.fp16.onnx beside model.onnx)."
        ) from err
    save_export(converted, replace(fp32.meta, precision=FP16), target, start)


def _gate(fp32: OnnxInfo, fp16_path: Path) -> float:
    """The export's FP16 verification against the FP32 file run by ONNX Runtime: its PSNR."""
    from echogen_trt.export.verify import FP16_MIN_PSNR_DB, reference_from_onnx, verify_onnx

    reference = reference_from_onnx(fp32.path)
    report = verify_onnx(fp16_path, reference=reference, raise_on_failure=False)
    if not report.ok:
        failed = "; ".join(f"{c.name}: {c.value} (bound {c.bound})" for c in report.failures())
        raise EngineBuildError(
            f"{fp16_path} | failed the FP16 check against {fp32.path}: {failed}. Expected PSNR "
            f">= {FP16_MIN_PSNR_DB:g} dB. Hint: re-export with `echogen-trt export --precision "
            "both`; if it persists build an fp32 engine (--precision fp32)."
        )
    return float(report.check("PSNR fp16 vs torch fp32").number or 0.0)


def profile_shapes(info: OnnxInfo, opts: BuildOptions) -> dict[str, dict[str, list[int]]]:
    """min/opt/max shape per input: batch from the options, H and W from the ModelMeta."""
    shapes: dict[str, dict[str, list[int]]] = {}
    for tensor in info.inputs:
        dims = list(tensor.shape)
        for axis in range(1, len(dims)):
            if dims[axis] is None:
                spatial = len(dims) - axis  # 2: H, 1: W
                if spatial > 2:
                    raise EngineBuildError(
                        f"{info.path} | input '{tensor.name}' has a dynamic dimension {axis} "
                        f"{tuple(tensor.shape)}. Expected only the batch to be dynamic. "
                        "Hint: re-export with a fixed image size."
                    )
                dims[axis] = info.meta.input_size[2 - spatial]
        if dims and dims[0] is not None:
            if (opts.min_batch, opts.max_batch) != (dims[0], dims[0]):
                log.warning(
                    "%s has a static batch of %s: batch options ignored", info.path, dims[0]
                )
            batches = (dims[0],) * 3
        else:
            batches = (opts.min_batch, opts.opt_batch, opts.max_batch)
        rest = [int(d) for d in dims[1:] if d is not None]
        shapes[tensor.name] = {
            key: [b, *rest] for key, b in zip(("min", "opt", "max"), batches, strict=True)
        }
    return shapes
