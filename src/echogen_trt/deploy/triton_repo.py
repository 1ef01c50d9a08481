"""Write an NVIDIA Triton model repository for our models: a TensorRT plan, an ONNX file
(onnxruntime backend) or an OpenVINO IR (openvino backend).

    repo/
      <name>/
        config.pbtxt
        1/
          model.plan | model.onnx | model.xml + model.bin

Every fact in `config.pbtxt` comes from the artifact itself: tensor names, data types and dims
from the ONNX graph, the IR, or the engine's provenance (what TensorRT reported at build time);
`max_batch_size` from the engine's optimisation profile, or a static batch of the model, else
`max_batch`; preferred batch sizes inside that range. A model folder appears whole or not at all
(written beside, then renamed), and an existing one is never replaced.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.artifacts.openvino_ir import IR_SUFFIX
from echogen_trt.artifacts.provenance import BuildOptions, read_provenance
from echogen_trt.deploy.triton_containers import container_note
from echogen_trt.errors import ConfigError, InputMismatch
from echogen_trt.fileio import ensure_dir, write_text_atomic
from echogen_trt.runtime.registry import (
    ENGINE_SUFFIXES,
    ONNX_SUFFIX,
    describe_suffixes,
    record,
    records,
    resolve_kind,
)

log = logging.getLogger(__name__)

VERSION = "1"
KINDS = ("gpu", "cpu")
DEFAULT_QUEUE_DELAY_US = 5000  # `serve`'s --max-delay-ms default, 5 ms
# numpy dtype name -> Triton config data type
DATA_TYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
}


@dataclass(frozen=True)
class TritonTensor:
    """One input or output: `dims` without the batch axis when the model batches."""

    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class TritonModel:
    """What one model folder holds: its config facts and the files of version 1."""

    name: str
    backend: str  # the Triton backend (the registry record's triton_backend)
    files: dict[str, Path]  # name in the version folder -> source file
    max_batch_size: int  # 0: the model does not batch (a static batch is part of dims)
    preferred_batch_sizes: tuple[int, ...]
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    instance_kind: str  # "KIND_GPU" | "KIND_CPU"
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RepoOptions:
    max_batch: int = BuildOptions().max_batch  # for models with a dynamic batch axis
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instance: str = "gpu"  # for ONNX models; engines run on GPU, IR on CPU


def write_triton_repo(
    models: list[str | os.PathLike[str]], out: str | os.PathLike[str], opts: RepoOptions
) -> list[TritonModel]:
    """Write one model folder per file under `out`; returns what was written."""
    if opts.instance not in KINDS:
        raise ConfigError(f"--instance {opts.instance!r} | unknown. Expected gpu or cpu.")
    if opts.max_batch < 1 or opts.queue_delay_us < 0:
        raise ConfigError(
            f"--max-batch {opts.max_batch} / --queue-delay-us {opts.queue_delay_us} | out of "
            "range. Expected --max-batch >= 1 and --queue-delay-us >= 0."
        )
    found = [triton_model(Path(m), opts) for m in models]
    names = [m.name for m in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"models | two files give the model name {twice[0]!r}. Expected one file per name. "
            "Hint: rename one (the name is the file's stem)."
        )
    root = ensure_dir(out)
    for model in found:
        if (root / model.name).exists():
            raise ConfigError(
                f"--out {root / model.name} | already exists. Expected a new model folder. "
                "Hint: choose another --out or remove that folder."
            )
    for model in found:
        _write_model(root, model, opts.queue_delay_us)
    return found


def triton_model(path: Path, opts: RepoOptions) -> TritonModel:
    """The repository entry for one model file, read by its format."""
    served = triton_suffixes()
    if not path.is_file():
        raise InputMismatch(f"model {path} | not found. Expected {describe_suffixes(served)}.")
    suffix = path.suffix.lower()
    if suffix not in served:
        raise ConfigError(
            f"model {path} | suffix {suffix!r}: no Triton backend serves it. Expected "
            f"{describe_suffixes(served)}. Hint: export a checkpoint with `echogen-trt export`."
        )
    backend = record(resolve_kind(path)).triton_backend
    if suffix in ENGINE_SUFFIXES:
        return _from_engine(path, backend, opts)
    if suffix == IR_SUFFIX:
        return _from_ir(path, backend, opts)
    return _from_onnx(path, backend, opts)


def triton_suffixes() -> tuple[str, ...]:
    """The model suffixes of the backends whose files a Triton backend serves (registry)."""
    return tuple(s for rec in records() if rec.triton_backend for s in rec.suffixes)


def _from_onnx(path: Path, backend: str, opts: RepoOptions) -> TritonModel:
    from onnx import helper

    from echogen_trt.artifacts.onnx_file import load_model, read_meta

    proto = load_model(path)
    read_meta(proto, f"ONNX file {path}")  # an echogen model, or a clear error

    def shapes(values: Any) -> list[tuple[str, str, list[int]]]:
        found = []
        for value in values:
            tensor = value.type.tensor_type
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            found.append((value.name, dtype, dims))
        return found

    return _model(
        path,
        backend,
        {f"model{ONNX_SUFFIX}": path},
        (shapes(proto.graph.input), shapes(proto.graph.output)),
        None,
        opts,
        "KIND_CPU" if opts.instance == "cpu" else "KIND_GPU",
    )


def _from_ir(path: Path, backend: str, opts: RepoOptions) -> TritonModel:
    from echogen_trt.artifacts.openvino_ir import load_model, read_meta, weights_path

    model = load_model(path)
    read_meta(model, f"OpenVINO IR {path}")

    def shapes(ports: Any) -> list[tuple[str, str, list[int]]]:
        return [
            (
                port.get_any_name(),
                np.dtype(port.get_element_type().to_dtype()).name,
                [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()],
            )
            for port in ports
        ]

    files = {f"model{IR_SUFFIX}": path, f"model{weights_path(path).suffix}": weights_path(path)}
    io = (shapes(model.inputs), shapes(model.outputs))
    return _model(path, backend, files, io, None, opts, "KIND_CPU")


def _from_engine(path: Path, backend: str, opts: RepoOptions) -> TritonModel:
    prov = read_provenance(path)
    io = tuple(
        [
            (t["name"], str(t["dtype"]), [int(d) for d in t["shape"]])
            for t in prov.io
            if t["mode"] == m
        ]
        for m in ("input", "output")
    )
    profile = prov.profile.get(io[0][0][0]) if io[0] else None
    batches = (profile["min"][0], profile["opt"][0], profile["max"][0]) if profile else None
    note = container_note(prov.tensorrt_version)
    return _model(path, backend, {"model.plan": path}, io, batches, opts, "KIND_GPU", note)


def _model(
    path: Path,
    backend: str,
    files: dict[str, Path],
    io: tuple[list[tuple[str, str, list[int]]], ...],
    profile_batches: tuple[int, int, int] | None,
    opts: RepoOptions,
    kind: str,
    note: str | None = None,
) -> TritonModel:
    """The entry from (name, dtype, dims with batch) lists: batching from the profile (min,
    opt, max), a static batch (no batching) or `opts.max_batch` for a dynamic batch axis."""
    inputs, outputs = io
    if not inputs or not outputs:
        raise InputMismatch(f"model {path} | no inputs or outputs. Expected a generator model.")
    batch = inputs[0][2][0] if inputs[0][2] else 0
    if profile_batches is not None:
        low, opt, high = profile_batches
    elif batch == -1:
        low, opt, high = 1, min(BuildOptions().opt_batch, opts.max_batch), opts.max_batch
    else:  # a static batch: Triton sees full shapes and does not batch
        low, opt, high = 0, 0, 0
    skip = 1 if high else 0

    def tensors(items: list[tuple[str, str, list[int]]]) -> tuple[TritonTensor, ...]:
        return tuple(TritonTensor(n, _data_type(n, t, path), tuple(d[skip:])) for n, t, d in items)

    preferred = tuple(sorted({b for b in (opt, high) if low <= b <= high and b > 1}))
    return TritonModel(
        name=path.stem,
        backend=backend,
        files=files,
        max_batch_size=high,
        preferred_batch_sizes=preferred,
        inputs=tensors(inputs),
        outputs=tensors(outputs),
        instance_kind=kind,
        notes=(note,) if note else (),
    )


def _data_type(name: str, dtype: str, path: Path) -> str:
    if dtype not in DATA_TYPES:
        raise InputMismatch(
            f"model {path} | tensor '{name}' has dtype {dtype}. Expected one of "
            f"{', '.join(DATA_TYPES)}."
        )
    return DATA_TYPES[dtype]


def config_pbtxt(model: TritonModel, queue_delay_us: int = DEFAULT_QUEUE_DELAY_US) -> str:
    """The model's config.pbtxt (protobuf text format of Triton's ModelConfig)."""

    def tensor(t: TritonTensor) -> str:
        dims = ", ".join(str(d) for d in t.dims)
        body = f'name: "{t.name}"\n    data_type: {t.data_type}\n    dims: [ {dims} ]'
        return f"  {{\n    {body}\n  }}"

    lines = [
        f'name: "{model.name}"',
        f'backend: "{model.backend}"',
        f"max_batch_size: {model.max_batch_size}",
        "input [\n" + ",\n".join(tensor(t) for t in model.inputs) + "\n]",
        "output [\n" + ",\n".join(tensor(t) for t in model.outputs) + "\n]",
        f"instance_group [\n  {{\n    count: 1\n    kind: {model.instance_kind}\n  }}\n]",
        f"version_policy: {{ specific: {{ versions: [ {VERSION} ] }} }}",
    ]
    if model.max_batch_size > 0:
        preferred = ", ".join(str(b) for b in model.preferred_batch_sizes)
        lines.append(
            "dynamic_batching {\n"
            + (f"  preferred_batch_size: [ {preferred} ]\n" if preferred else "")
            + f"  max_queue_delay_microseconds: {queue_delay_us}\n}}"
        )
    source = next(iter(model.files.values())).name
    header = [f"# written by echogen-trt triton-repo from {source}"]
    header += [f"# {note}" for note in model.notes]
    return "\n".join(header + lines) + "\n"


def _write_model(root: Path, model: TritonModel, queue_delay_us: int) -> None:
    """Stage the folder beside its final place, then rename it in one step."""
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{model.name}-") as tmp:
        staged = Path(tmp) / model.name
        (staged / VERSION).mkdir(parents=True)
        for name, source in model.files.items():
            shutil.copyfile(source, staged / VERSION / name)
        write_text_atomic(staged / "config.pbtxt", config_pbtxt(model, queue_delay_us))
        os.replace(staged, root / model.name)
    log.debug("wrote %s (%s backend)", root / model.name, model.backend)
