"""OpenVINO models and the echogen metadata they carry: read and write `ModelMeta` in `rt_info`.

An OpenVINO IR (`model.xml` + `model.bin`) keeps the metadata in its `<rt_info>` block, one
`<echogen>` section holding `ModelMeta.to_props()`'s JSON values under the field names, so the
model is self-describing like an ONNX file and needs no sidecar. OpenVINO's ONNX reader copies an
ONNX file's `metadata_props` into `rt_info["framework"]` ("echogen.experiment", ...): the reader
takes those when no `<echogen>` section exists. The `<echogen>` section wins, because an IR
converted from an ONNX file keeps the file's `framework` block (an INT8 IR would still say fp32).

openvino is imported only to load or save a file (the caller has it: the OpenVINO backend or the
INT8 exporter). Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from echogen_trt.artifacts.model_meta import META_PREFIX, ModelMeta
from echogen_trt.errors import ExportError, InputMismatch
from echogen_trt.fileio import locked_temp_dir

SECTION = "echogen"  # <rt_info><echogen><experiment value="..."/>...
FRAMEWORK = "framework"  # where OpenVINO's ONNX reader puts metadata_props
IR_SUFFIX = ".xml"


def weights_path(xml_path: str | os.PathLike[str]) -> Path:
    """model.xml -> model.bin, the weights file OpenVINO reads beside the IR."""
    return Path(xml_path).with_suffix(".bin")


def write_meta(model: Any, meta: ModelMeta) -> None:
    """Set `meta` in an `openvino.Model`'s rt_info section `echogen` (values JSON-encoded)."""
    for key, value in meta.to_props().items():
        model.set_rt_info(value, [SECTION, key[len(META_PREFIX) :]])


def meta_props(model: Any) -> dict[str, str]:
    """The echogen.* string map of an `openvino.Model`: its `echogen` section, else what the ONNX
    reader carried over in `framework`; {} when neither holds any."""
    info = model.get_rt_info()
    if SECTION in info:
        section = info[SECTION]
        return {META_PREFIX + k: _text(section[k]) for k in section}
    if FRAMEWORK in info:
        framework = info[FRAMEWORK]
        return {k: _text(framework[k]) for k in framework if k.startswith(META_PREFIX)}
    return {}


def _text(value: Any) -> str:
    """An rt_info value (OVAny, or a str in some versions) as the string that was stored."""
    return str(value.astype(str)) if hasattr(value, "astype") else str(value)


def read_meta(model: Any, source: str = "OpenVINO model") -> ModelMeta:
    """ModelMeta of an `openvino.Model`; InputMismatch naming `source` when it carries none."""
    return ModelMeta.from_props(meta_props(model), source=source)


def load_model(path: str | os.PathLike[str], core: Any = None) -> Any:
    """`openvino.Model` of an IR (.xml with its .bin) or an ONNX file; InputMismatch naming the
    file when it is missing or unreadable."""
    import openvino as ov

    path = Path(path)
    if not path.is_file():
        raise InputMismatch(
            f"model {path} | not found. Expected an {IR_SUFFIX} (with its .bin) or an .onnx file."
        )
    if path.suffix.lower() == IR_SUFFIX and not weights_path(path).is_file():
        raise InputMismatch(
            f"OpenVINO IR {path} | its weights {weights_path(path).name} are missing. Expected "
            "the .bin file beside the .xml. Hint: copy both files together."
        )
    try:
        return (core or ov.Core()).read_model(os.fspath(path))
    except Exception as err:  # OpenVINO raises RuntimeError subclasses with long C++ traces
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise InputMismatch(
            f"model {path} | OpenVINO cannot read it: {first}. "
            "Hint: re-export with `echogen-trt export`."
        ) from err


def save_ir(model: Any, xml_path: str | os.PathLike[str], meta: ModelMeta) -> int:
    """Write `model` with `meta` as an IR (.xml + .bin, weights as they are: no FP16
    compression); both files appear at once (written to a temporary folder beside them, then
    renamed, .bin first). Returns the bytes of both files."""
    import openvino as ov

    xml_path = Path(xml_path)
    write_meta(model, meta)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with locked_temp_dir(xml_path.parent, ".ir-") as tmp:
        staged = Path(tmp) / xml_path.name
        try:
            ov.save_model(model, os.fspath(staged), compress_to_fp16=False)
        except Exception as err:
            raise ExportError(
                f"OpenVINO IR {xml_path} | cannot be written: {str(err).strip()[:200]}. "
                "Hint: check free disk space and permissions."
            ) from err
        os.replace(weights_path(staged), weights_path(xml_path))
        os.replace(staged, xml_path)
    return xml_path.stat().st_size + weights_path(xml_path).stat().st_size
