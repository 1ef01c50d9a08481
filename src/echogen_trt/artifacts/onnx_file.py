"""ONNX files and the echogen metadata they carry: load, save, read and write `ModelMeta`.

The one reader of an ONNX model's metadata, whether it comes as a file, an `onnx.ModelProto` or
the string map ONNX Runtime reports (`custom_metadata_map`). onnx is imported only when a file or
proto is handled, so the ONNX Runtime backend does not pay for it. Torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from echogen_trt import __version__
from echogen_trt.artifacts.model_meta import META_PREFIX, ModelMeta
from echogen_trt.errors import ExportError
from echogen_trt.fileio import write_bytes_atomic

if TYPE_CHECKING:
    import onnx

MAX_PROTO_BYTES = 2**31 - 1  # protobuf limit of a single-file ONNX model


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """onnx.load with an ExportError naming the file when it is missing or not ONNX."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ExportError(
            f"ONNX file {path} | not found. Hint: export one with `echogen-trt export`."
        )
    try:
        return onnx.load(os.fspath(path))
    except Exception as err:  # protobuf DecodeError and friends
        raise ExportError(
            f"ONNX file {path} | cannot be parsed ({type(err).__name__}). Expected an ONNX "
            "model. Hint: the file may be truncated; export it again."
        ) from err


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> int:
    """Write `model` as one file, atomically (temporary file, then os.replace); returns bytes."""
    path = Path(path)
    size = model.ByteSize()
    if size > MAX_PROTO_BYTES:
        raise ExportError(
            f"ONNX file {path} | the model is {size / 2**30:.1f} GiB, over protobuf's 2 GiB limit "
            "for a single file. Hint: use a smaller width or FP16."
        )
    write_bytes_atomic(path, model.SerializeToString())
    return path.stat().st_size


def write_meta(model: onnx.ModelProto, meta: ModelMeta) -> None:
    """Replace the model's echogen.* metadata_props with `meta.to_props()`."""
    others = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(META_PREFIX)]
    del model.metadata_props[:]
    for key, value in [*others, *sorted(meta.to_props().items())]:
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "echogen-trt"
    model.producer_version = __version__


def input_batch(model: onnx.ModelProto) -> int | None:
    """The fixed batch of the model's first input, or None when its batch axis is dynamic."""
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else None


def opset_of(model: onnx.ModelProto) -> int:
    """The model's default-domain (ai.onnx) opset version."""
    found = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not found:
        raise ExportError("ONNX model | imports no ai.onnx opset. Expected one (e.g. 17).")
    return int(found[0])


def read_meta(
    model: onnx.ModelProto | Mapping[str, str] | str | os.PathLike[str],
    source: str | None = None,
) -> ModelMeta:
    """ModelMeta of an ONNX file, model or metadata map; InputMismatch naming `source` (or the
    file) when it has none."""
    if isinstance(model, Mapping):
        return ModelMeta.from_props(dict(model), source=source or "model")
    if isinstance(model, (str, os.PathLike)):
        proto, source = load_model(model), source or f"ONNX file {os.fspath(model)}"
    else:
        proto, source = model, source or "model"
    return ModelMeta.from_props({p.key: p.value for p in proto.metadata_props}, source=source)
