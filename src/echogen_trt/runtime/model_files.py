"""The files one model consists of, for the output-safety rule (`fileio.check_outputs`).

An OpenVINO IR is `model.xml` plus `model.bin`; an engine is `model.engine` plus its provenance
`model.engine.json`. A command that reads or writes a model must treat every one of those files
as read or written, or `export ck.bin --out ck.xml` replaces the checkpoint with the weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from echogen_trt.artifacts.openvino_ir import IR_SUFFIX, weights_path
from echogen_trt.artifacts.provenance import provenance_path
from echogen_trt.runtime.registry import ENGINE_SUFFIXES


def model_files(path: str | os.PathLike[str], role: str = "model") -> dict[str, Path]:
    """{role: path} of the model file and its siblings: `--model m.xml` -> m.xml and m.bin."""
    model = Path(path)
    files = {role: model}
    suffix = model.suffix.lower()
    if suffix == IR_SUFFIX:
        files[f"{role} weights"] = weights_path(model)
    elif suffix in ENGINE_SUFFIXES:
        files[f"{role} provenance"] = provenance_path(model)
    return files
