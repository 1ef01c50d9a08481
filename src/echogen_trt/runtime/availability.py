"""What is installed, found without importing anything heavy until asked.

`import tensorrt` is not a test: with `tensorrt-stubs` installed it succeeds as a namespace
package holding only `.pyi` files. A real TensorRT has `__version__` and `Builder`.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

from echogen_trt.errors import BackendUnavailable

TRT_INSTALL_HINT = (
    "desktop or ARM server: `pip install 'echogen-trt[trt]'` (TensorRT's CUDA 12 wheels from "
    "PyPI; `[trt-cu13]` with driver 580+); Jetson: TensorRT comes with JetPack (`sudo apt "
    "install nvidia-jetpack`); use a venv made with --system-site-packages to see it, then "
    "`pip install pycuda` with nvcc on PATH."
)


def has_module(name: str) -> bool:
    """True when `name` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def tensorrt_module() -> ModuleType | None:
    """The real `tensorrt` module, or None (absent, a stub, or broken)."""
    if not has_module("tensorrt"):
        return None
    try:
        trt = importlib.import_module("tensorrt")
    except Exception:  # a broken install raises all sorts (OSError for missing libnvinfer)
        return None
    if not hasattr(trt, "__version__") or not hasattr(trt, "Builder"):
        return None
    return trt


def require_tensorrt() -> Any:
    """The `tensorrt` module, or BackendUnavailable saying how to install it."""
    trt = tensorrt_module()
    if trt is None:
        raise BackendUnavailable(
            f"tensorrt | not installed (or only its type stubs). {TRT_INSTALL_HINT}"
        )
    return trt


CUDA_INSTALL_HINT = (
    "desktop: `pip install 'cuda-python>=12,<13'` (13.x needs driver 580+) or `pip install "
    "pycuda`; Jetson: `pip install pycuda` (builds from source: needs nvcc on PATH, "
    "`export PATH=/usr/local/cuda/bin:$PATH`)."
)
# cuda-python's runtime module: `cuda.bindings.runtime` from 12.6, `cuda.cudart` in 12.0-12.5
CUDA_PYTHON_MODULES = ("cuda.bindings.runtime", "cuda.cudart")
PYCUDA_MODULE = "pycuda.driver"


def cuda_bindings() -> list[str]:
    """The CUDA Python bindings installed, of those the TensorRT backend can use ("cuda-python",
    "pycuda"): the one answer the registry, doctor and the CUDA layer share."""
    found = []
    if any(has_module(name) for name in CUDA_PYTHON_MODULES):
        found.append("cuda-python")
    if has_module(PYCUDA_MODULE):
        found.append("pycuda")
    return found


def module_version(name: str) -> str | None:
    """`name.__version__` if importable, else None. Imports the module."""
    if not has_module(name):
        return None
    try:
        mod = importlib.import_module(name)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "unknown"))
