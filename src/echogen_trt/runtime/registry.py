"""Which backend serves a model file, imported only when chosen.

The suffix decides (.engine/.plan -> TensorRT, .onnx -> ONNX Runtime, .pt/.pth -> PyTorch) unless
a kind is named. Backend modules are imported lazily, so `generate model.onnx` never imports
torch or TensorRT, and a missing package becomes BackendUnavailable naming the pip extra.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from pathlib import Path
from typing import Any

from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime.availability import TRT_INSTALL_HINT, has_module, tensorrt_module
from echogen_trt.runtime.backends.base import Backend

# kind -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "tensorrt": ("echogen_trt.runtime.backends.tensorrt", "TensorRTBackend"),
    "onnxrt": ("echogen_trt.runtime.backends.onnxrt", "OnnxRuntimeBackend"),
    "torch": ("echogen_trt.train.torch_backend", "TorchBackend"),
    "openvino": ("echogen_trt.runtime.backends.openvino", "OpenVinoBackend"),
}
SUFFIX_KIND = {
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".onnx": "onnxrt",
    ".pt": "torch",
    ".pth": "torch",
    ".xml": "openvino",
}
# .onnx stays ONNX Runtime's with OpenVINO installed unless `--backend auto` measures: OpenVINO FP32
# ran the reference model at 0.89-0.96x ORT's speed on an AVX2 EPYC
# (benchmarks/results/cpu-backend-choice-amd-epyc-2c-2026-12-01.json) but 1.08-1.16x on an AVX-512
# one: runtime.backend_choice races them on this machine and caches the winner.
# Backends that also serve another kind's files when named with --backend.
ALSO_READS = {"openvino": (".onnx",)}
INSTALL_HINTS = {
    "tensorrt": TRT_INSTALL_HINT,
    "onnxrt": "`pip install onnxruntime` (or onnxruntime-gpu for the CUDA/TensorRT providers).",
    "torch": "`pip install 'echogen-trt[train]'`.",
    "openvino": "`pip install 'echogen-trt[openvino]'`.",
}
# What to do when a file is given to a backend that cannot read it: (suffix kind, asked kind).
_CONVERT_HINTS = {
    "torch": "export it first: `echogen-trt export CHECKPOINT --out model.onnx`",
    "onnxrt": "build an engine first: `echogen-trt build-engine model.onnx`, or use "
    "--backend onnxrt (it uses ONNX Runtime's TensorRT provider where installed)",
    "tensorrt": "serve the .onnx file the engine was built from with --backend onnxrt",
    "openvino": "serve it with --backend openvino, or the .onnx file it came from",
}


def resolve_kind(model_path: str | os.PathLike[str], kind: str | None = None) -> str:
    """The backend kind for a model file: from `kind` (unless None/"auto") or from its suffix."""
    suffix = Path(model_path).suffix.lower()
    by_suffix = SUFFIX_KIND.get(suffix)
    if kind is None or kind == "auto":
        if by_suffix is None:
            raise ConfigError(
                f"model {model_path} | unknown suffix {suffix!r}. Expected one of "
                f"{', '.join(SUFFIX_KIND)}. Hint: name the backend with --backend."
            )
        return by_suffix
    if kind not in BACKENDS:
        raise ConfigError(
            f"backend {kind!r} | unknown. Expected one of auto, {', '.join(BACKENDS)}."
        )
    if by_suffix is not None and by_suffix != kind and suffix not in ALSO_READS.get(kind, ()):
        raise ConfigError(
            f"model {model_path} | a {suffix} file cannot be served by the {kind} backend. "
            f"Expected {', '.join([*_suffixes(kind), *ALSO_READS.get(kind, ())])}. "
            f"Hint: {_CONVERT_HINTS[by_suffix]}."
        )
    return kind


def _suffixes(kind: str) -> list[str]:
    return [s for s, k in SUFFIX_KIND.items() if k == kind]


def available_backends() -> dict[str, tuple[bool, str]]:
    """{kind: (usable, why)} for every backend, without importing torch."""
    return {kind: backend_availability(kind) for kind in BACKENDS}


def backend_availability(kind: str) -> tuple[bool, str]:
    """(usable, why) for one backend kind; imports onnxruntime/tensorrt, never torch."""
    if kind == "onnxrt":
        if not has_module("onnxruntime"):
            return False, "onnxruntime is not installed"
        import onnxruntime as ort

        providers = ", ".join(ort.get_available_providers())
        return True, f"onnxruntime {ort.__version__} ({providers})"
    if kind == "torch":
        if not has_module("torch"):
            return False, "torch is not installed"
        return True, f"torch {_dist_version('torch')}"
    if kind == "openvino":
        if not has_module("openvino"):
            return False, "openvino is not installed"
        return True, f"openvino {_dist_version('openvino')}"
    trt = tensorrt_module()
    if trt is None:
        return False, "TensorRT is not installed (or only its type stubs)"
    if not (has_module("cuda") or has_module("pycuda")):
        return False, f"TensorRT {trt.__version__} found but no CUDA bindings (cuda-python/pycuda)"
    return True, f"TensorRT {trt.__version__}"


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def backend_class(kind: str) -> type[Backend]:
    """The Backend subclass for `kind`, imported now; BackendUnavailable naming the pip extra."""
    ok, reason = backend_availability(kind)
    if not ok:
        raise BackendUnavailable(
            f"backend {kind} | unavailable: {reason}. Hint: {INSTALL_HINTS[kind]}"
        )
    module_name, class_name = BACKENDS[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackendUnavailable(
            f"backend {kind} | cannot be imported ({err}). Hint: {INSTALL_HINTS[kind]}"
        ) from err
    cls: type[Backend] = getattr(module, class_name)
    return cls


def open_backend(
    model_path: str | os.PathLike[str], kind: str | None = None, **opts: Any
) -> Backend:
    """A backend for `model_path`, constructed but not opened (call `.open()` or use `with`).

    `kind`: None (from the suffix), "auto" (measured: runtime.backend_choice), "tensorrt",
    "onnxrt", "openvino" or "torch". `opts` go to the backend (e.g. device, providers, threads).
    """
    path = Path(model_path)
    if kind == "auto":  # measured on this machine where two backends can serve the file
        from echogen_trt.runtime.backend_choice import auto_kind

        kind = auto_kind(path, backend_availability, backend_class)
    chosen = resolve_kind(path, kind)
    if not path.is_file():
        raise ConfigError(
            f"model {path} | not found. Expected an .engine, .onnx or .pt file. "
            "Hint: export one with `echogen-trt export`, or pass --model."
        )
    return backend_class(chosen)(str(path), **opts)


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
    return f"{kind}: unavailable, {reason}. Hint: {INSTALL_HINTS[kind]}{exists}"
