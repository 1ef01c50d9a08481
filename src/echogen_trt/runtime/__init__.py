"""Torch-free runtime: mask-to-echo generation on TensorRT, ONNX Runtime or PyTorch.

`from echogen_trt.runtime import MaskToEcho, run_generate, open_backend` - imported on first use,
so importing a submodule (e.g. `runtime.availability`) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from echogen_trt.runtime.mask_to_echo import MaskToEcho
    from echogen_trt.runtime.pipeline import GenerateSummary, run_generate
    from echogen_trt.runtime.registry import available_backends, open_backend

_EXPORTS = {
    "MaskToEcho": "echogen_trt.runtime.mask_to_echo",
    "GenerateSummary": "echogen_trt.runtime.pipeline",
    "run_generate": "echogen_trt.runtime.pipeline",
    "open_backend": "echogen_trt.runtime.registry",
    "available_backends": "echogen_trt.runtime.registry",
}
__all__ = [
    "GenerateSummary",
    "MaskToEcho",
    "available_backends",
    "open_backend",
    "run_generate",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
