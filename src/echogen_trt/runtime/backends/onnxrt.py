"""ONNX Runtime backend: TensorRT EP, CUDA EP or CPU, chosen from what is installed.

The session is tuned for one model served in a loop: graph optimisation ALL, memory arena and
patterns on, sequential execution, intra-op threads = physical cores (hyper-threads slow convs
down). On GPU providers the outputs are bound with I/O binding so ONNX Runtime allocates them
once on the device and copies back in one go.
"""

from __future__ import annotations

import ctypes.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.artifacts.onnx_file import read_meta
from echogen_trt.errors import BackendUnavailable, InputMismatch
from echogen_trt.runtime.availability import has_module
from echogen_trt.runtime.backends.base import Backend, TensorSpec
from echogen_trt.runtime.cpu import physical_cores

log = logging.getLogger(__name__)

PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(double)": np.float64,
    "tensor(bool)": np.bool_,
}


def tensorrt_libs_present() -> bool:
    """Whether the TensorRT libraries the TensorRT EP loads can be found (pip or system)."""
    return has_module("tensorrt_libs") or ctypes.util.find_library("nvinfer") is not None


def choose_providers(requested: list[str] | None, available: list[str]) -> list[str]:
    """Providers in priority order: the ones asked (aliases allowed), else the best available.

    Fallbacks are appended for nodes a provider cannot run: CUDA after TensorRT, then CPU.
    """
    if not requested:
        chosen = [p for p in PREFERRED if p in available]
        if "TensorrtExecutionProvider" in chosen and not tensorrt_libs_present():
            # onnxruntime-gpu lists the TensorRT EP even without TensorRT; skip the failed try.
            chosen.remove("TensorrtExecutionProvider")
    else:
        chosen = [PROVIDER_ALIASES.get(p.lower(), p) for p in requested]
        missing = [p for p in chosen if p not in available]
        if missing:
            raise BackendUnavailable(
                f"onnxruntime | provider(s) {missing} not available. Expected one of "
                f"{available}. Hint: GPU providers need `pip install onnxruntime-gpu` "
                "(in place of onnxruntime) and a CUDA driver."
            )
    # Fallbacks for the nodes a provider cannot run: CUDA after TensorRT, CPU last.
    for fallback in PREFERRED[1:]:
        if fallback not in chosen and fallback in available and chosen[-1] in PREFERRED[:-1]:
            chosen.append(fallback)
    return chosen


def spec_from_node(node: Any, source: str) -> TensorSpec:
    """TensorSpec of an ONNX Runtime NodeArg; symbolic or unknown dims become None."""
    dtype = _ORT_DTYPES.get(node.type)
    if dtype is None:
        raise InputMismatch(f"{source} | tensor '{node.name}' has unsupported type {node.type}.")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
    return TensorSpec(shape, np.dtype(dtype))


class OnnxRuntimeBackend(Backend):
    """An ONNX file served by ONNX Runtime.

    Options: `providers` (list of names or aliases tensorrt/cuda/cpu; default: best available),
    `threads` (intra-op threads; default physical cores), `io_binding` (None: on GPU providers),
    `trt_cache_dir` (TensorRT EP engine cache; default `<model dir>/.ort_trt_cache`).
    """

    name = "onnxrt"

    def _open(self) -> None:
        import onnxruntime as ort

        path = Path(self.model_path)
        providers = choose_providers(self.opts.get("providers"), ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(
                str(path),
                sess_options=self._session_options(ort),
                providers=[(p, self._provider_options(p, path)) for p in providers],
            )
        except Exception as err:  # ORT raises its own pybind exception types
            raise InputMismatch(
                f"{path} | ONNX Runtime cannot load it: {str(err).strip()[:300]}. "
                "Hint: re-export with `echogen-trt export`."
            ) from err
        props = self._session.get_modelmeta().custom_metadata_map
        self._meta = read_meta(dict(props), source=str(path))
        self._inputs = {n.name: spec_from_node(n, str(path)) for n in self._session.get_inputs()}
        self._outputs = {n.name: spec_from_node(n, str(path)) for n in self._session.get_outputs()}
        self.providers = list(self._session.get_providers())
        want_binding = self.opts.get("io_binding")
        self._device_type = "cuda" if self.providers[0] in GPU_PROVIDERS else "cpu"
        self._binding = (self._device_type == "cuda") if want_binding is None else want_binding
        log.debug("onnxrt | %s on %s (io binding: %s)", path.name, self.providers, self._binding)

    @property
    def compute_device(self) -> str:
        self._require_open("compute_device")
        return self._device_type

    def _session_options(self, ort: Any) -> Any:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = True
        options.intra_op_num_threads = int(self.opts.get("threads") or physical_cores())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the EP fallback warnings are noise here
        return options

    def _provider_options(self, provider: str, path: Path) -> dict[str, Any]:
        if provider == "CUDAExecutionProvider":
            return {"device_id": self.device}
        if provider == "TensorrtExecutionProvider":
            cache = Path(self.opts.get("trt_cache_dir") or path.parent / ".ort_trt_cache")
            return {
                "device_id": self.device,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
            }
        return {}

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._binding:
            names = list(self._outputs)
            return dict(zip(names, self._session.run(names, feeds), strict=True))
        binding = self._session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name in self._outputs:
            binding.bind_output(
                name, self._device_type, self.device if self._device_type == "cuda" else 0
            )
        self._session.run_with_iobinding(binding)
        return dict(zip(self._outputs, binding.copy_outputs_to_cpu(), strict=True))

    def _close(self) -> None:
        del self._session
