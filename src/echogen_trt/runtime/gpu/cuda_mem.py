"""CUDA memory, streams and events behind one small interface: cuda-python or pycuda.

TensorRT needs device buffers, a stream and (for fast copies) pinned host memory; it does not
care who allocates them. NVIDIA's samples moved from pycuda to cuda-python (`cuda.bindings`);
JetPack images often ship pycuda. `get_cuda_api()` picks whichever is installed, so the engine
builder (export) and the TensorRT backend (runtime) are written once against `CudaApi`; it lives
in this shared layer because both use it. Nothing here imports either library until an API
object is created.

Handles (streams, events) are opaque objects of the implementation; device pointers are ints.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from echogen_trt.errors import BackendUnavailable
from echogen_trt.runtime.availability import CUDA_INSTALL_HINT, CUDA_PYTHON_MODULES, PYCUDA_MODULE

log = logging.getLogger(__name__)


class CudaError(BackendUnavailable):
    """A CUDA call failed (no driver, no device, out of memory, ...)."""


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is tied to, plus what helps a user read an error."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory_mb: int
    integrated: bool  # True on Jetson (GPU shares the system memory)

    @property
    def sm(self) -> str:
        """Compute capability as "8.7"."""
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


class CudaApi(abc.ABC):
    """The few CUDA runtime calls the TensorRT backend and builder need."""

    name: str = "base"

    @abc.abstractmethod
    def device_count(self) -> int: ...

    @abc.abstractmethod
    def device_info(self, index: int) -> DeviceInfo: ...

    @abc.abstractmethod
    def bind(self, index: int) -> contextlib.AbstractContextManager[None]:
        """Make device `index` current in this thread for the `with` block."""

    @abc.abstractmethod
    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> np.ndarray:
        """1-D page-locked host array (async copies need pinned memory)."""

    @abc.abstractmethod
    def free_pinned(self, array: np.ndarray) -> None: ...

    @abc.abstractmethod
    def malloc(self, nbytes: int) -> int:
        """Device allocation; returns the device pointer."""

    @abc.abstractmethod
    def free(self, ptr: int) -> None: ...

    @abc.abstractmethod
    def memcpy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...

    @abc.abstractmethod
    def memcpy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None: ...

    @abc.abstractmethod
    def stream_create(self) -> Any: ...

    @abc.abstractmethod
    def stream_handle(self, stream: Any) -> int:
        """The raw cudaStream_t as an int, as `execute_async_v3` wants it."""

    @abc.abstractmethod
    def stream_synchronize(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def stream_destroy(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def event_create(self) -> Any: ...

    @abc.abstractmethod
    def event_record(self, event: Any, stream: Any) -> None: ...

    @abc.abstractmethod
    def event_elapsed_ms(self, start: Any, end: Any) -> float: ...

    @abc.abstractmethod
    def event_destroy(self, event: Any) -> None: ...


def cuda_call(result: Any, what: str = "cuda") -> Any:
    """Unpack a cuda-python `(err, *values)` tuple; raise CudaError unless err is success.

    Returns None, the single value, or a tuple of values. The status is compared through
    `int(...)`, which works for `cudaError_t` and `CUresult` alike (both are int enums).
    """
    items: tuple[Any, ...] = result if isinstance(result, tuple) else (result,)
    err, values = items[0], items[1:]
    code = int(getattr(err, "value", err))
    if code != 0:
        name = getattr(err, "name", f"error {code}")
        raise CudaError(f"{what} | CUDA call failed: {name} ({code}). {_cuda_hint(name)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def _cuda_hint(name: str) -> str:
    if "InsufficientDriver" in name or "INSUFFICIENT_DRIVER" in name:
        return (
            "Hint: the NVIDIA driver is older than this CUDA library (cuda-python 13 needs "
            "driver 580+); `pip install 'cuda-python>=12,<13'` or update the driver."
        )
    if "NoDevice" in name or "NO_DEVICE" in name:
        return "Hint: no usable CUDA GPU/driver here; run on a machine with an NVIDIA GPU."
    if "MemoryAllocation" in name or "OUT_OF_MEMORY" in name:
        return "Hint: out of GPU memory; lower --max-batch or close other GPU programs."
    return "Hint: run `nvidia-smi` to check the driver and GPU."


def host_array(ptr: int, count: int, dtype: np.dtype[Any]) -> np.ndarray:
    """1-D numpy view of `count` elements at host address `ptr` (pinned memory).

    Viewed as bytes first: `np.ctypeslib.as_ctypes_type` has no ctypes type for float16 (it
    raises NotImplementedError), and FP16 engine I/O needs exactly that.
    """
    dtype = np.dtype(dtype)
    raw = ctypes.cast(ptr, ctypes.POINTER(ctypes.c_uint8))
    return np.ctypeslib.as_array(raw, (max(count, 1) * dtype.itemsize,)).view(dtype)[:count]


class CudaPythonApi(CudaApi):
    """NVIDIA's cuda-python (`cuda.bindings.runtime`, or the older `cuda.cudart`)."""

    name = "cuda-python"

    def __init__(self, cudart: Any = None) -> None:
        self.rt = cudart if cudart is not None else _import_cudart()

    def device_count(self) -> int:
        return int(cuda_call(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount"))

    def device_info(self, index: int) -> DeviceInfo:
        prop = cuda_call(self.rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
        raw = prop.name
        name = raw.split(b"\0", 1)[0].decode() if isinstance(raw, bytes) else str(raw)
        return DeviceInfo(
            index=index,
            name=name,
            compute_capability=(int(prop.major), int(prop.minor)),
            total_memory_mb=int(prop.totalGlobalMem) >> 20,
            integrated=bool(prop.integrated),
        )

    @contextlib.contextmanager
    def bind(self, index: int) -> Iterator[None]:
        # The runtime API keeps one current device per thread; TensorRT uses the same.
        cuda_call(self.rt.cudaSetDevice(index), "cudaSetDevice")
        yield

    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> np.ndarray:
        dtype = np.dtype(dtype)
        ptr = cuda_call(self.rt.cudaMallocHost(max(count, 1) * dtype.itemsize), "cudaMallocHost")
        return host_array(int(ptr), count, dtype)

    def free_pinned(self, array: np.ndarray) -> None:
        cuda_call(self.rt.cudaFreeHost(array.ctypes.data), "cudaFreeHost")

    def malloc(self, nbytes: int) -> int:
        return int(cuda_call(self.rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        cuda_call(self.rt.cudaFree(ptr), "cudaFree")

    def memcpy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        cuda_call(
            self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream),
            "cudaMemcpyAsync(H2D)",
        )

    def memcpy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(
            self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream),
            "cudaMemcpyAsync(D2H)",
        )

    def stream_create(self) -> Any:
        return cuda_call(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_synchronize(self, stream: Any) -> None:
        cuda_call(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def stream_destroy(self, stream: Any) -> None:
        cuda_call(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def event_create(self) -> Any:
        return cuda_call(self.rt.cudaEventCreate(), "cudaEventCreate")

    def event_record(self, event: Any, stream: Any) -> None:
        cuda_call(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(cuda_call(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def event_destroy(self, event: Any) -> None:
        cuda_call(self.rt.cudaEventDestroy(event), "cudaEventDestroy")


def _import_cudart() -> Any:
    for name in CUDA_PYTHON_MODULES:  # cuda-python >= 12.6, then 12.0-12.5
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendUnavailable(f"cuda-python | not installed. {CUDA_INSTALL_HINT}")


class PyCudaApi(CudaApi):
    """pycuda, on the device's primary context (the one TensorRT's runtime API uses)."""

    name = "pycuda"

    def __init__(self, driver: Any = None) -> None:
        if driver is None:
            try:
                driver = importlib.import_module(PYCUDA_MODULE)
            except ImportError as err:
                raise BackendUnavailable(f"pycuda | not installed. {CUDA_INSTALL_HINT}") from err
        self.drv = driver
        try:
            self.drv.init()
        except Exception as err:  # pycuda._driver.Error (e.g. cuInit: no driver or device)
            raise CudaError(f"pycuda | cuInit failed: {err}. {_cuda_hint(str(err))}") from err
        self._contexts: dict[int, Any] = {}
        self._allocations: dict[int, Any] = {}

    def device_count(self) -> int:
        return int(self.drv.Device.count())

    def device_info(self, index: int) -> DeviceInfo:
        dev = self.drv.Device(index)
        major, minor = dev.compute_capability()
        integrated = dev.get_attribute(self.drv.device_attribute.INTEGRATED)
        return DeviceInfo(
            index=index,
            name=str(dev.name()),
            compute_capability=(int(major), int(minor)),
            total_memory_mb=int(dev.total_memory()) >> 20,
            integrated=bool(integrated),
        )

    @contextlib.contextmanager
    def bind(self, index: int) -> Iterator[None]:
        # pycuda keeps a per-thread context stack: push the primary context for the block.
        if index not in self._contexts:
            self._contexts[index] = self.drv.Device(index).retain_primary_context()
        self._contexts[index].push()
        try:
            yield
        finally:
            self.drv.Context.pop()

    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> np.ndarray:
        return self.drv.pagelocked_empty(count, np.dtype(dtype))  # type: ignore[no-any-return]

    def free_pinned(self, array: np.ndarray) -> None:
        base = array.base
        if base is not None and hasattr(base, "free"):
            base.free()

    def malloc(self, nbytes: int) -> int:
        alloc = self.drv.mem_alloc(max(nbytes, 1))
        self._allocations[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        self._allocations.pop(ptr).free()

    def memcpy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self.drv.memcpy_htod_async(dst, src, stream)

    def memcpy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(dst, src, stream)

    def stream_create(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        del stream  # pycuda frees the stream with the object

    def event_create(self) -> Any:
        return self.drv.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        del event


IMPLEMENTATIONS: dict[str, type[CudaApi]] = {"cuda-python": CudaPythonApi, "pycuda": PyCudaApi}


def get_cuda_api(prefer: str | None = None) -> CudaApi:
    """The first of cuda-python, pycuda that is installed *and* can talk to the driver.

    A cuda-python built for a newer CUDA than the driver (cuda-python 13 on a CUDA 12 driver)
    imports fine but fails every call, so each candidate is probed with a device count and the
    next one tried. When none can reach a GPU the first installed one is returned, and
    `require_device` reports why. BackendUnavailable names both when neither is installed.
    """
    order = [prefer] if prefer else list(IMPLEMENTATIONS)
    unreachable: list[tuple[CudaApi, CudaError]] = []
    failed: list[str] = []
    for name in order:
        if name not in IMPLEMENTATIONS:
            raise BackendUnavailable(
                f"cuda api | unknown {name!r}. Expected one of {sorted(IMPLEMENTATIONS)}."
            )
        try:
            api = IMPLEMENTATIONS[name]()
        except CudaError as err:  # installed but cannot start (pycuda: cuInit failed)
            failed.append(str(err))
            continue
        except BackendUnavailable as err:  # not installed
            log.debug("%s unavailable: %s", name, err)
            continue
        try:
            api.device_count()
        except CudaError as err:
            log.debug("%s cannot reach the driver: %s", name, err)
            unreachable.append((api, err))
            continue
        if unreachable:
            first, why = unreachable[0]
            log.warning("using %s: %s cannot talk to the driver (%s)", api.name, first.name, why)
        return api
    if unreachable:
        return unreachable[0][0]
    if failed:
        raise BackendUnavailable(
            f"cuda | no CUDA library can reach a GPU here: {'; '.join(failed)}"
        )
    raise BackendUnavailable(
        f"cuda | neither cuda-python nor pycuda is installed (TensorRT needs one for GPU "
        f"memory). {CUDA_INSTALL_HINT}"
    )


def require_device(api: CudaApi, index: int = 0) -> DeviceInfo:
    """DeviceInfo of GPU `index`, or BackendUnavailable saying there is no such GPU."""
    try:
        count = api.device_count()
    except CudaError as err:
        raise BackendUnavailable(
            f"cuda | no CUDA GPU usable here ({err}). TensorRT engines are built and run on an "
            "NVIDIA GPU. Hint: use the ONNX Runtime backend on this machine."
        ) from err
    if count == 0:
        raise BackendUnavailable(
            "cuda | no CUDA GPU found. TensorRT engines are built and run on an NVIDIA GPU. "
            "Hint: use the ONNX Runtime backend on this machine."
        )
    if not 0 <= index < count:
        raise BackendUnavailable(
            f"cuda | device {index} does not exist. Expected 0..{count - 1}. "
            "Hint: pass --device with one of those."
        )
    return api.device_info(index)
