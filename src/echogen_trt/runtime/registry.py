"""The backend table: one record per backend, and the only door through which a backend is opened.

Everything echogen-trt knows about a backend (its name, the model files it serves, the extra that
installs it, how to tell it is usable and why not, its precisions, its module) is in its
`BackendRecord` below. The registry, `doctor`, `bench`, `serve` and every message read the
records, so adding a backend is one record here plus one module (tests/test_layers.py checks that
nothing else names a backend or a model suffix).

The suffix decides (.engine/.plan -> TensorRT, .onnx -> ONNX Runtime, .pt/.pth -> PyTorch, .xml
-> OpenVINO) unless a backend is named. Backend modules are imported on first use, so
`generate model.onnx` never imports torch or TensorRT, and a missing package becomes
BackendUnavailable naming the pip extra. A record names its module by path: that is how the torch
backend lives in train/ (it needs the model code) while the runtime stays torch-free.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echogen_trt.artifacts.openvino_ir import IR_SUFFIX
from echogen_trt.artifacts.precision import FP16, FP32, INT8
from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime.availability import (
    TRT_INSTALL_HINT,
    cuda_bindings,
    has_module,
    tensorrt_module,
)
from echogen_trt.runtime.backends.base import Backend

AUTO = "auto"  # the --backend value that lets the suffix decide
# The model file formats, by suffix (the OpenVINO IR's is its format module's, below the runtime).
ENGINE_SUFFIXES = (".engine", ".plan")
ONNX_SUFFIX = ".onnx"
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class BackendRecord:
    """Everything the project knows about one backend, decided here once."""

    name: str  # the --backend value and `Backend.name`
    title: str  # for people: "ONNX Runtime"
    package: str  # what must be installed (doctor's line is named after it)
    module: str  # "module.path:ClassName", imported on first use
    suffixes: tuple[str, ...]  # model files it serves by default
    install: str  # how to get it (the hint of every "unavailable" message)
    probe: Callable[[], tuple[bool, str]]  # (usable, why); imports nothing heavy, never torch
    disables: str  # what does not work without it (doctor)
    convert_hint: str  # what to do when one of its files is given to another backend
    precisions: tuple[str, ...] = (FP32,)  # of the model files it serves
    also_reads: tuple[str, ...] = ()  # other backends' files it serves when named
    # bench: ways to run it, labelled NAME:variant ({variant: opts} of what is usable now)
    variants: Callable[[], dict[str, dict[str, Any]]] | None = None
    variant_names: tuple[str, ...] = ()  # every variant that may exist (for --help and checks)
    # bench's reference: its class takes `source_meta=ModelMeta` to rebuild a model with random
    # weights from the ModelMeta's model_config (when no checkpoint is among the models)
    eager_baseline: bool = False
    # the files `generate` picks when no model is named (glob patterns); earlier records win
    default_files: tuple[str, ...] = ()


def _probe_onnxrt() -> tuple[bool, str]:
    if not has_module("onnxruntime"):
        return False, "onnxruntime is not installed"
    import onnxruntime as ort

    providers = ", ".join(ort.get_available_providers())
    return True, f"onnxruntime {ort.__version__} ({providers})"


def _probe_torch() -> tuple[bool, str]:
    if not has_module("torch"):
        return False, "torch is not installed"
    return True, f"torch {_dist_version('torch')}"


def _probe_openvino() -> tuple[bool, str]:
    if not has_module("openvino"):
        return False, "openvino is not installed"
    return True, f"openvino {_dist_version('openvino')}"


def _probe_tensorrt() -> tuple[bool, str]:
    trt = tensorrt_module()
    if trt is None:
        stubs = " (only its type stubs are)" if has_module("tensorrt") else ""
        return False, f"TensorRT is not installed{stubs}"
    if not cuda_bindings():
        return False, f"TensorRT {trt.__version__} found but no CUDA bindings (cuda-python/pycuda)"
    return True, f"TensorRT {trt.__version__} ({', '.join(cuda_bindings())})"


# ONNX Runtime provider -> the variant bench names it by (--backend onnxrt:NAME)
ORT_VARIANTS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def _ort_variants() -> dict[str, dict[str, Any]]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    return {
        short: {"providers": [provider]}
        for short, provider in ORT_VARIANTS.items()
        if provider in available
    }


RECORDS: tuple[BackendRecord, ...] = (
    BackendRecord(
        name="tensorrt",
        title="TensorRT",
        package="tensorrt",
        module="echogen_trt.runtime.backends.tensorrt:TensorRTBackend",
        suffixes=ENGINE_SUFFIXES,
        default_files=tuple(f"*{s}" for s in ENGINE_SUFFIXES),
        install=TRT_INSTALL_HINT,
        probe=_probe_tensorrt,
        disables="build-engine and the TensorRT backend",
        convert_hint="serve the .onnx file the engine was built from with --backend onnxrt",
        precisions=(FP32, FP16),
    ),
    BackendRecord(
        name="onnxrt",
        title="ONNX Runtime",
        package="onnxruntime",
        module="echogen_trt.runtime.backends.onnxrt:OnnxRuntimeBackend",
        suffixes=(ONNX_SUFFIX,),
        default_files=(f"*{ONNX_SUFFIX}",),
        install="`pip install onnxruntime` (or onnxruntime-gpu for the CUDA/TensorRT providers).",
        probe=_probe_onnxrt,
        disables="the ONNX Runtime backend and export verification",
        convert_hint="build an engine first: `echogen-trt build-engine model.onnx`, or use "
        "--backend onnxrt (it uses ONNX Runtime's TensorRT provider where installed)",
        precisions=(FP32, FP16, INT8),
        variants=_ort_variants,
        variant_names=tuple(ORT_VARIANTS),
    ),
    BackendRecord(
        name="torch",
        title="PyTorch",
        package="torch",
        module="echogen_trt.train.torch_backend:TorchBackend",
        suffixes=CHECKPOINT_SUFFIXES,
        default_files=(f"best{CHECKPOINT_SUFFIXES[0]}",),
        install="`pip install 'echogen-trt[train]'`.",
        probe=_probe_torch,
        disables="train, export, the PyTorch backend and the torch baseline in bench",
        convert_hint="export it first: `echogen-trt export CHECKPOINT --out model.onnx`",
        eager_baseline=True,
    ),
    # .onnx stays ONNX Runtime's with OpenVINO installed: measured on a 2-core AVX2 EPYC,
    # OpenVINO FP32 ran the reference model at 0.96x (batch 1) and 0.89x (batch 8) ORT's speed,
    # every one of 6 interleaved rounds below 1.0
    # (benchmarks/results/cpu-backend-choice-amd-epyc-2c-2026-12-01.json).
    BackendRecord(
        name="openvino",
        title="OpenVINO",
        package="openvino",
        module="echogen_trt.runtime.backends.openvino:OpenVinoBackend",
        suffixes=(IR_SUFFIX,),
        also_reads=(ONNX_SUFFIX,),
        install="`pip install 'echogen-trt[openvino]'`.",
        probe=_probe_openvino,
        disables="the OpenVINO backend (.xml IR, INT8 models; often the fastest on a CPU)",
        convert_hint="serve it with --backend openvino, or the .onnx file it came from",
        precisions=(FP32, FP16, INT8),
    ),
)


# -- reading the table ------------------------------------------------------------------------
def records() -> tuple[BackendRecord, ...]:
    """Every backend record, in the order doctor and --help list them."""
    return RECORDS


def names() -> tuple[str, ...]:
    """Every backend name (the values of --backend besides auto)."""
    return tuple(r.name for r in records())


def record(name: str) -> BackendRecord:
    """The record named `name`; ConfigError listing the names otherwise."""
    for rec in records():
        if rec.name == name:
            return rec
    raise ConfigError(f"backend {name!r} | unknown. Expected one of {AUTO}, {', '.join(names())}.")


def model_suffixes() -> tuple[str, ...]:
    """Every model file suffix some backend serves by default."""
    return tuple(s for rec in records() for s in rec.suffixes)


def describe_suffixes(suffixes: tuple[str, ...] | None = None) -> str:
    """'an .engine, .plan, .onnx, .pt, .pth or .xml file', for messages."""
    shown = list(suffixes or model_suffixes())
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return f"an {listed} file"


def bench_labels() -> tuple[str, ...]:
    """Every value bench's --backend accepts: NAME and NAME:variant."""
    return tuple(
        label
        for rec in records()
        for label in (rec.name, *(f"{rec.name}:{v}" for v in rec.variant_names))
    )


def _kind_of_suffix(suffix: str) -> str | None:
    return next((rec.name for rec in records() if suffix in rec.suffixes), None)


def readers_of(model_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Every backend that serves `model_path`: the one its suffix names first, then the others
    that also read it (OpenVINO reads .onnx)."""
    suffix = Path(model_path).suffix.lower()
    first = [rec.name for rec in records() if suffix in rec.suffixes]
    return (*first, *(rec.name for rec in records() if suffix in rec.also_reads))


# -- choosing -----------------------------------------------------------------------------------
def resolve_kind(model_path: str | os.PathLike[str], kind: str | None = None) -> str:
    """The backend for a model file: `kind` (unless None/"auto"), else from its suffix."""
    suffix = Path(model_path).suffix.lower()
    by_suffix = _kind_of_suffix(suffix)
    if kind is None or kind == AUTO:
        if by_suffix is None:
            raise ConfigError(
                f"model {model_path} | unknown suffix {suffix!r}. Expected one of "
                f"{', '.join(model_suffixes())}. Hint: name the backend with --backend."
            )
        return by_suffix
    asked = record(kind)
    if by_suffix is not None and by_suffix != kind and suffix not in asked.also_reads:
        raise ConfigError(
            f"model {model_path} | a {suffix} file cannot be served by the {kind} backend. "
            f"Expected {', '.join([*asked.suffixes, *asked.also_reads])}. "
            f"Hint: {record(by_suffix).convert_hint}."
        )
    return kind


def available_backends() -> dict[str, tuple[bool, str]]:
    """{name: (usable, why)} for every backend, without importing torch."""
    return {name: backend_availability(name) for name in names()}


def backend_availability(kind: str) -> tuple[bool, str]:
    """(usable, why) for one backend; imports onnxruntime/tensorrt, never torch."""
    return record(kind).probe()


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def backend_class(kind: str) -> type[Backend]:
    """The Backend subclass for `kind`, imported now; BackendUnavailable naming the pip extra."""
    rec = record(kind)
    ok, reason = backend_availability(kind)
    if not ok:
        raise BackendUnavailable(f"backend {kind} | unavailable: {reason}. Hint: {rec.install}")
    module_name, class_name = rec.module.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackendUnavailable(
            f"backend {kind} | cannot be imported ({err}). Hint: {rec.install}"
        ) from err
    cls: type[Backend] = getattr(module, class_name)
    return cls


def open_backend(
    model_path: str | os.PathLike[str], kind: str | None = None, **opts: Any
) -> Backend:
    """A backend for `model_path`, constructed but not opened (call `.open()` or use `with`).

    `kind`: None/"auto" (from the suffix) or a record's name. `opts` go to the backend (e.g.
    device, providers, threads).
    """
    path = Path(model_path)
    chosen = resolve_kind(path, kind)
    if not path.is_file():
        raise ConfigError(
            f"model {path} | not found. Expected {describe_suffixes()}. "
            "Hint: export one with `echogen-trt export`, or pass --model."
        )
    return backend_class(chosen)(str(path), **opts)


def open_eager_baseline(source: str, meta: Any, **opts: Any) -> Backend:
    """The eager baseline backend (the record with eager_baseline) rebuilt from `meta`'s
    model_config with random weights, for bench when no checkpoint is among the models."""
    rec = next(r for r in records() if r.eager_baseline)
    return backend_class(rec.name)(source, source_meta=meta, **opts)


def eager_baseline_name() -> str | None:
    """The name of bench's baseline backend, or None when no record is one."""
    return next((r.name for r in records() if r.eager_baseline), None)


def describe_choice(model_path: str | os.PathLike[str]) -> str:
    """One line saying which backend would serve `model_path` and whether it can (for doctor)."""
    try:
        kind = resolve_kind(model_path)
    except ConfigError as err:
        return f"none: {err}"
    ok, reason = backend_availability(kind)
    exists = "" if Path(model_path).is_file() else " (file not found)"
    if ok:
        return f"{kind}: {reason}{exists}"
    return f"{kind}: unavailable, {reason}. Hint: {record(kind).install}{exists}"
