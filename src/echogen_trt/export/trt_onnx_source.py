"""The ONNX file an engine is built from: its bytes, hash, metadata and graph inputs, and the
optimization-profile shapes they need (batch from the build options, H and W from the metadata).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import read_meta
from echogen_trt.artifacts.provenance import BuildOptions
from echogen_trt.errors import EngineBuildError
from echogen_trt.fileio import sha256_file

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


def read_onnx(path: str | os.PathLike[str]) -> OnnxInfo:
    """Bytes, hash, ModelMeta and graph inputs of an exported ONNX file."""
    import onnx
    from onnx import helper

    path = Path(path)
    if not path.is_file():
        raise EngineBuildError(
            f"{path} | ONNX file not found. Hint: export one with `echogen-trt export`."
        )
    data = path.read_bytes()
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
