"""OpenVINO backend: an ONNX file or an OpenVINO IR (.xml + .bin, e.g. the INT8 export) on a CPU.

Compiled for one model served in a loop: FP32 inference precision (on CPUs with AMX or
avx512_bf16 OpenVINO would otherwise compute FP32 models in bf16, outside the export's checked
accuracy; INT8 layers stay INT8), threads = OpenVINO's own default (physical cores, no
hyper-threads) unless `threads` is given. `streams` > 1 compiles for throughput and splits each
batch across that many asynchronous infer requests (`openvino.AsyncInferQueue`), one per stream;
the default 1 is one synchronous request using every thread (on 2 cores two streams were no
faster: benchmarks/cpu_backend_choice.py; they may pay on many cores). openvino is imported in
`_open`.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.artifacts.openvino_ir import load_model, read_meta
from echogen_trt.errors import BackendUnavailable, InputMismatch
from echogen_trt.runtime.availability import module_version
from echogen_trt.runtime.backends.base import Backend, TensorSpec

log = logging.getLogger(__name__)


def spec_from_port(port: Any, source: str) -> TensorSpec:
    """TensorSpec of an OpenVINO model input/output; dynamic dims become None."""
    try:
        dtype = np.dtype(port.get_element_type().to_dtype())
    except Exception as err:  # an element type numpy has no name for
        raise InputMismatch(
            f"{source} | tensor '{port.get_any_name()}' has unsupported type "
            f"{port.get_element_type()}."
        ) from err
    shape = tuple(None if d.is_dynamic else d.get_length() for d in port.get_partial_shape())
    return TensorSpec(shape, dtype)


class OpenVinoBackend(Backend):
    """An .onnx or .xml file served by OpenVINO.

    Options: `threads` (inference threads; default OpenVINO's: the physical cores), `streams`
    (1: one synchronous request, lowest latency; N > 1: throughput mode, each batch split over N
    asynchronous requests), `ov_device` (OpenVINO device name; default "CPU").
    """

    name = "openvino"

    @classmethod
    def environment(cls) -> str:
        import openvino as ov

        devices = ", ".join(ov.Core().available_devices)
        nncf = module_version("nncf")
        detail = f"devices: {devices}; nncf {nncf or 'not installed'}"
        if nncf is None:
            detail += " (export --precision int8 needs it: pip install 'echogen-trt[int8]')"
        return detail

    def _open(self) -> None:
        try:
            import openvino as ov
        except ImportError as err:
            raise BackendUnavailable(
                f"openvino | cannot be imported ({err}). "
                "Hint: `pip install 'echogen-trt[openvino]'`."
            ) from err
        path = Path(self.model_path)
        core = ov.Core()
        model = load_model(path, core)
        self._meta = read_meta(model, source=f"model {path}")
        self._streams = max(1, int(self.opts.get("streams") or 1))
        self.ov_device = str(self.opts.get("ov_device") or "CPU")
        try:
            self._compiled = core.compile_model(model, self.ov_device, self._config())
        except Exception as err:  # a device OpenVINO does not have, an op it cannot compile
            raise BackendUnavailable(
                f"openvino | cannot compile {path.name} for {self.ov_device}: "
                f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else err!r}. "
                f"Expected one of the devices {core.available_devices}."
            ) from err
        source = f"model {path}"
        self._inputs = {p.get_any_name(): spec_from_port(p, source) for p in model.inputs}
        self._outputs = {p.get_any_name(): spec_from_port(p, source) for p in model.outputs}
        self._request = self._compiled.create_infer_request()
        self._queue = None
        if self._streams > 1:
            self._queue = ov.AsyncInferQueue(self._compiled, self._streams)
        self.providers = [f"OpenVINO {ov.get_version().split('-')[0]} {self.ov_device}"]
        log.debug("openvino | %s on %s, %d stream(s)", path.name, self.ov_device, self._streams)

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "THROUGHPUT" if self._streams > 1 else "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if self._streams > 1:
            config["NUM_STREAMS"] = self._streams
        if self.opts.get("threads"):
            config["INFERENCE_NUM_THREADS"] = int(self.opts["threads"])
        return config

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        first = next(iter(feeds.values()))
        if self._queue is None or len(first) < 2:
            self._request.infer(feeds)
            return {name: self._request.get_tensor(name).data for name in self._outputs}
        return self._infer_split(feeds, len(first))

    def _infer_split(self, feeds: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """One batch split into up to `streams` slices, run concurrently, joined in order."""
        assert self._queue is not None
        bounds = np.linspace(0, n, min(self._streams, n) + 1).astype(int)
        parts: dict[int, dict[str, np.ndarray]] = {}

        def done(request: Any, index: int) -> None:
            parts[index] = {k: np.array(request.get_tensor(k).data) for k in self._outputs}

        self._queue.set_callback(done)
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            self._queue.start_async({k: v[lo:hi] for k, v in feeds.items()}, i)
        self._queue.wait_all()
        return {k: np.concatenate([parts[i][k] for i in sorted(parts)]) for k in self._outputs}

    def _close(self) -> None:
        self._queue = None
        del self._request, self._compiled
