"""TensorRT backend: a built engine run with pinned host buffers, device buffers and one stream.

As in NVIDIA's samples (`common_runtime.py`), but through the name-based I/O API of TensorRT
8.5+ (`num_io_tensors`, `set_input_shape`, `set_tensor_address`, `execute_async_v3`), the
small `runtime.gpu.cuda_mem.CudaApi` (cuda-python or pycuda) and the TensorRT helpers the builder
shares (`runtime.gpu.trt_api`). Buffers are sized once for the optimization profile's maximum;
each call copies inputs in, runs and copies outputs back on one stream, then synchronises once.
Engines with a static batch (DLA) get smaller batches zero-padded by `Backend.infer` (min_batch).

Before deserializing, the engine's provenance (`<engine>.json`) is checked against this
machine; `force=True` loads it anyway (with a warning). CUDA-graph replay is not implemented:
`cuda_graph=True` is refused rather than silently ignored. One backend object is not meant to be
used from several threads at once (one stream, one set of buffers).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from echogen_trt.artifacts import provenance as pv
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import ConfigError, EngineMismatch, InputMismatch
from echogen_trt.runtime import availability
from echogen_trt.runtime.backends.base import Backend, TensorSpec
from echogen_trt.runtime.gpu import cuda_mem
from echogen_trt.runtime.gpu.trt_api import dims, numpy_dtype, shared_logger, trt_errors

if TYPE_CHECKING:
    import tensorrt as trt_t

log = logging.getLogger(__name__)


@dataclass
class _Buffer:
    name: str
    host: np.ndarray  # pinned, 1-D, sized for the profile maximum
    device: int


@dataclass
class _Session:
    """Everything `open` allocates, so `close` (or a failed `open`) frees exactly that."""

    cuda: cuda_mem.CudaApi
    logger: Any = None  # TensorRT wants the logger and runtime alive as long as the engine
    runtime: Any = None
    engine: Any = None
    context: Any = None
    stream: Any = None
    events: list[Any] = field(default_factory=list)
    inputs: list[_Buffer] = field(default_factory=list)
    outputs: list[_Buffer] = field(default_factory=list)


class TensorRTBackend(Backend):
    """Runs a TensorRT engine built by `echogen-trt build-engine`.

    Options: `force` (load despite a provenance mismatch or a missing provenance file), `onnx`
    (the source ONNX file: refused if it changed since the build),
    `trt` and `cuda` (inject a TensorRT module and a CudaApi, for tests).
    """

    name = "tensorrt"

    def __init__(
        self,
        model_path: str,
        *,
        device: int = 0,
        force: bool = False,
        trt: Any = None,
        cuda: cuda_mem.CudaApi | None = None,
        **opts: Any,
    ) -> None:
        if opts.pop("cuda_graph", False):
            raise ConfigError(
                "cuda_graph | CUDA-graph replay is not implemented by the TensorRT backend. "
                "Hint: drop the option; execute_async_v3 on one stream is used instead."
            )
        super().__init__(model_path, device=device, **opts)
        self.force = force
        self.provenance: pv.Provenance | None = None
        self._trt = trt
        self._cuda = cuda
        self._session: _Session | None = None
        self._min_batch = 1
        self._max_batch: int | None = None
        self._timings: dict[str, float] = {}

    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    @property
    def min_batch(self) -> int:
        return self._min_batch

    @property
    def compute_device(self) -> str:
        return "cuda"

    def timings(self) -> dict[str, float]:
        """h2d / compute / d2h of the last call in ms, from CUDA events on the stream."""
        return dict(self._timings)

    # -- open ------------------------------------------------------------------------------
    def _open(self) -> None:
        trt = self._trt if self._trt is not None else availability.require_tensorrt()
        cuda = self._cuda if self._cuda is not None else cuda_mem.get_cuda_api()
        self._trt, self._cuda = trt, cuda
        gpu = cuda_mem.require_device(cuda, self.device)
        self.provenance = self._check_provenance(trt, gpu)
        session = _Session(cuda)
        try:
            with cuda.bind(self.device):
                self._start(trt, session)
        except BaseException:
            self._release(session)
            raise
        self._session = session
        self._meta = self.provenance.meta if self.provenance else self._guess_meta()

    def _check_provenance(self, trt: Any, gpu: cuda_mem.DeviceInfo) -> pv.Provenance | None:
        try:
            prov = pv.read_provenance(self.model_path)
        except EngineMismatch as err:
            if not self.force:
                raise
            log.warning("loading %s unchecked (force): %s", self.model_path, err)
            return None
        here = pv.Environment(str(trt.__version__), gpu.name, gpu.sm)
        onnx = self.opts.get("onnx")  # the source ONNX, to check the engine against
        if not self.force:
            pv.check_compatible(prov, here, engine_path=self.model_path, onnx_path=onnx)
        elif found := pv.mismatches(prov, here, engine_path=self.model_path, onnx_path=onnx):
            log.warning("loading %s despite (force): %s", self.model_path, "; ".join(found))
        return prov

    def _start(self, trt: Any, s: _Session) -> None:
        with open(self.model_path, "rb") as f:
            data = f.read()
        s.logger = shared_logger(trt)
        runtime: trt_t.Runtime = trt.Runtime(s.logger)
        s.runtime = runtime
        dla_core = self.provenance.options.dla_core if self.provenance else None
        if dla_core is not None:  # the engine runs on the core the runtime names, not its own
            runtime.DLA_core = dla_core
        with trt_errors(s.logger) as errors:
            engine: trt_t.ICudaEngine | None = runtime.deserialize_cuda_engine(data)
        if engine is None:
            said = "; ".join(errors) or "no message"
            raise EngineMismatch(
                f"{self.model_path} | TensorRT could not deserialize the engine ({said}). "
                "Built by another TensorRT version or for another GPU, or not an engine? "
                "Hint: rebuild it here with `echogen-trt build-engine`."
            )
        s.engine = engine
        context: trt_t.IExecutionContext = engine.create_execution_context()
        s.context = context
        s.stream = s.cuda.stream_create()
        s.events = [s.cuda.event_create() for _ in range(4)]
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name in inputs:
            self._set_max_shape(engine, context, name)
        for name in names:
            self._allocate(s, engine, context, name, is_input=name in inputs)

    def _set_max_shape(
        self, engine: trt_t.ICudaEngine, context: trt_t.IExecutionContext, name: str
    ) -> None:
        shape = dims(engine.get_tensor_shape(name))
        if -1 in shape:
            low, _, high = (dims(d) for d in engine.get_tensor_profile_shape(name, 0))
        else:
            low = high = shape
        if not context.set_input_shape(name, high):
            raise EngineMismatch(f"{self.model_path} | input '{name}' rejects its max {high}.")
        self._min_batch, self._max_batch = int(low[0]), int(high[0])
        self._inputs[name] = TensorSpec((None, *_spec_dims(shape[1:])), numpy_dtype(
            engine.get_tensor_dtype(name), name))  # fmt: skip

    def _allocate(
        self,
        s: _Session,
        engine: trt_t.ICudaEngine,
        context: trt_t.IExecutionContext,
        name: str,
        *,
        is_input: bool,
    ) -> None:
        dtype = numpy_dtype(engine.get_tensor_dtype(name), name)
        shape = dims(context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise EngineMismatch(
                f"{self.model_path} | tensor '{name}' has an unresolved shape {shape} at the "
                "profile maximum. Hint: rebuild the engine from the exported ONNX."
            )
        host = s.cuda.pinned_empty(int(np.prod(shape)), dtype)
        buf = _Buffer(name, host, 0)
        (s.inputs if is_input else s.outputs).append(buf)  # tracked before the next alloc
        buf.device = s.cuda.malloc(host.nbytes)
        if not context.set_tensor_address(name, buf.device):
            raise EngineMismatch(f"{self.model_path} | cannot bind tensor '{name}'.")
        if not is_input:
            static = dims(engine.get_tensor_shape(name))[1:]
            self._outputs[name] = TensorSpec((None, *_spec_dims(static)), dtype)

    def _guess_meta(self) -> ModelMeta:
        """Conventions read off the engine when there is no provenance (force=True)."""
        (in_name, spec), out_name = next(iter(self._inputs.items())), next(iter(self._outputs))
        h, w = (int(d or 0) for d in spec.shape[-2:])
        io = "uint8" if spec.dtype == np.uint8 else "float"
        log.warning("no provenance: assuming every label is kept and io=%s", io)
        return ModelMeta("unknown", (1, 2, 3), (h, w), io, input_name=in_name, output_name=out_name)

    # -- infer -----------------------------------------------------------------------------
    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = self._session
        assert s is not None  # the base class checks open() first
        cuda, context, stream = s.cuda, s.context, s.stream
        n = int(next(iter(feeds.values())).shape[0])
        with cuda.bind(self.device):
            views = [self._stage_input(context, buf, feeds[buf.name]) for buf in s.inputs]
            cuda.event_record(s.events[0], stream)
            for buf, view in zip(s.inputs, views, strict=True):
                cuda.memcpy_htod_async(buf.device, view, stream)
            cuda.event_record(s.events[1], stream)
            if not context.execute_async_v3(cuda.stream_handle(stream)):
                raise EngineMismatch(f"{self.model_path} | execute_async_v3 failed; see the log.")
            cuda.event_record(s.events[2], stream)
            out = {}
            for buf in s.outputs:
                shape = dims(context.get_tensor_shape(buf.name))
                view = buf.host[: int(np.prod(shape))].reshape(shape)
                cuda.memcpy_dtoh_async(view, buf.device, stream)
                out[buf.name] = view[:n]
            cuda.event_record(s.events[3], stream)
            cuda.stream_synchronize(stream)
            ms = [cuda.event_elapsed_ms(a, b) for a, b in itertools.pairwise(s.events)]
        self._timings = dict(zip(("h2d", "compute", "d2h"), ms, strict=True))
        return out

    def _stage_input(self, context: Any, buf: _Buffer, arr: np.ndarray) -> np.ndarray:
        """Set the input shape and write `arr` into its pinned buffer (`Backend.infer` has
        padded a batch below the profile's minimum)."""
        shape = tuple(arr.shape)
        if not context.set_input_shape(buf.name, shape):
            raise InputMismatch(
                f"input '{buf.name}' | shape {tuple(arr.shape)} is outside the engine's "
                f"profile (batch {self._min_batch}..{self._max_batch}). Hint: rebuild with "
                "matching --min-batch/--max-batch."
            )
        view = buf.host[: int(np.prod(shape))].reshape(shape)
        np.copyto(view, arr)
        return view

    # -- close -----------------------------------------------------------------------------
    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._release(session)

    def _release(self, s: _Session) -> None:
        """Free what `s` holds; log (never raise) failures so the rest is still freed."""
        with s.cuda.bind(self.device):
            for buf in s.inputs + s.outputs:
                if buf.device:
                    _quietly(s.cuda.free, buf.device)
                _quietly(s.cuda.free_pinned, buf.host)
            for event in s.events:
                _quietly(s.cuda.event_destroy, event)
            if s.stream is not None:
                _quietly(s.cuda.stream_destroy, s.stream)
            # release order: context, engine, runtime, inside the binding so their device
            # memory is freed in the right CUDA context (pycuda on a device other than 0)
            s.context = None
            s.engine = None
            s.runtime = s.logger = None
        s.inputs, s.outputs, s.events = [], [], []


def _quietly(fn: Callable[[Any], None], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("tensorrt backend: freeing %r failed", arg)


def _spec_dims(shape: tuple[int, ...]) -> tuple[int | None, ...]:
    return tuple(None if d < 0 else int(d) for d in shape)
