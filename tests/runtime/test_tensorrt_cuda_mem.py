"""artifacts.cuda_mem: the checked-call helper and both CudaApi implementations, driven through
stand-ins of `cuda.bindings.runtime` and `pycuda.driver` (real host memory via ctypes, so the
pinned-array views and copies are real), plus a contract check against the real cuda-bindings
where it is installed.
"""

from __future__ import annotations

import ast
import ctypes
import enum
import importlib
import inspect
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from echogen_trt.errors import BackendUnavailable
from echogen_trt.runtime.gpu import cuda_mem
from echogen_trt.runtime.gpu.cuda_mem import CudaError, CudaPythonApi, PyCudaApi, cuda_call


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100


OK = cudaError_t.cudaSuccess


class FakeCudart:
    """`cuda.bindings.runtime` as far as CudaPythonApi uses it; "device" memory is host RAM."""

    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)

    def __init__(self, devices: int = 1) -> None:
        self.devices = devices
        self.buffers: dict[int, ctypes.Array] = {}
        self.calls: list[tuple] = []

    def _alloc(self, size: int) -> tuple:
        buf = ctypes.create_string_buffer(size)
        self.buffers[ctypes.addressof(buf)] = buf
        return OK, ctypes.addressof(buf)

    def _free(self, ptr: int) -> tuple:
        return (OK,) if self.buffers.pop(ptr, None) is not None else (cudaError_t(2),)

    def cudaGetDeviceCount(self):
        return (OK, self.devices) if self.devices else (cudaError_t.cudaErrorNoDevice, 0)

    def cudaGetDeviceProperties(self, device):
        prop = SimpleNamespace(name=b"NVIDIA Fake 3000\x00\x13junk", major=8, minor=6,
                               totalGlobalMem=8 << 30, integrated=0)  # fmt: skip
        return OK, prop

    def cudaSetDevice(self, device):
        self.calls.append(("cudaSetDevice", device))
        return (OK,)

    cudaMallocHost = cudaMalloc = _alloc
    cudaFreeHost = cudaFree = _free

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        self.calls.append(("cudaMemcpyAsync", kind, count, int(stream)))
        ctypes.memmove(dst, src, count)
        return (OK,)

    def cudaStreamCreate(self):
        return OK, 0xBEEF

    def cudaStreamSynchronize(self, stream):
        return (OK,)

    cudaStreamDestroy = cudaStreamSynchronize

    def cudaEventCreate(self):
        return OK, 7

    def cudaEventRecord(self, event, stream):
        return (OK,)

    def cudaEventElapsedTime(self, start, end):
        return OK, 1.25

    def cudaEventDestroy(self, event):
        return (OK,)


def test_cuda_call_unpacks_and_checks():
    assert cuda_call((OK, 5)) == 5
    assert cuda_call((OK,)) is None
    assert cuda_call((OK, 1, 2)) == (1, 2)
    assert cuda_call(OK) is None  # a bare status
    with pytest.raises(CudaError, match=r"cudaMalloc \| CUDA call failed: "
                       r"cudaErrorMemoryAllocation \(2\)\. Hint: out of GPU memory"):  # fmt: skip
        cuda_call((cudaError_t.cudaErrorMemoryAllocation, None), "cudaMalloc")
    with pytest.raises(CudaError, match=r"driver is older.*cuda-python>=12,<13"):
        cuda_call((cudaError_t.cudaErrorInsufficientDriver, None))
    with pytest.raises(CudaError, match="no usable CUDA GPU/driver"):
        cuda_call((cudaError_t.cudaErrorNoDevice, None))
    with pytest.raises(CudaError, match=r"error 999 \(999\)"):
        cuda_call((999,))  # a plain int status (driver API style)


def test_cuda_python_round_trip_through_pinned_memory():
    rt = FakeCudart()
    api = CudaPythonApi(rt)
    host = api.pinned_empty(6, np.dtype(np.float32))
    assert host.shape == (6,) and host.dtype == np.float32
    assert host.ctypes.data in rt.buffers  # a view on the cudaMallocHost allocation
    host[:] = np.arange(6, dtype=np.float32)
    device = api.malloc(host.nbytes)
    stream = api.stream_create()
    api.memcpy_htod_async(device, host, stream)
    back = api.pinned_empty(6, np.dtype(np.float32))
    api.memcpy_dtoh_async(back, device, stream)
    api.stream_synchronize(stream)
    np.testing.assert_array_equal(back, np.arange(6, dtype=np.float32))
    copies = [c for c in rt.calls if c[0] == "cudaMemcpyAsync"]
    assert copies == [("cudaMemcpyAsync", 1, 24, 0xBEEF), ("cudaMemcpyAsync", 2, 24, 0xBEEF)]
    assert api.stream_handle(stream) == 0xBEEF
    start, end = api.event_create(), api.event_create()
    api.event_record(start, stream)
    assert api.event_elapsed_ms(start, end) == 1.25
    for array in (host, back):
        api.free_pinned(array)
    api.free(device)
    assert rt.buffers == {}
    with pytest.raises(CudaError, match="cudaFree"):
        api.free(device)  # double free is reported, not ignored


def test_cuda_python_float16_pinned_buffers():
    """FP16 engine I/O: numpy has no ctypes type for float16, so views go through bytes."""
    rt = FakeCudart()
    api = CudaPythonApi(rt)
    host = api.pinned_empty(5, np.dtype(np.float16))
    assert host.shape == (5,) and host.dtype == np.float16 and host.ctypes.data in rt.buffers
    host[:] = np.linspace(0, 1, 5, dtype=np.float16)
    device, stream = api.malloc(host.nbytes), api.stream_create()
    back = api.pinned_empty(5, np.dtype(np.float16))
    api.memcpy_htod_async(device, host, stream)
    api.memcpy_dtoh_async(back, device, stream)
    np.testing.assert_array_equal(back, np.linspace(0, 1, 5, dtype=np.float16))
    for array in (host, back):
        api.free_pinned(array)
    api.free(device)
    assert rt.buffers == {}


def test_cuda_python_device_info_and_binding():
    rt = FakeCudart()
    api = CudaPythonApi(rt)
    info = api.device_info(0)
    assert (info.name, info.compute_capability, info.sm) == ("NVIDIA Fake 3000", (8, 6), "8.6")
    assert (info.total_memory_mb, info.integrated) == (8192, False)
    with api.bind(0):
        pass
    assert ("cudaSetDevice", 0) in rt.calls


class FakeDriver:
    """`pycuda.driver` as far as PyCudaApi uses it."""

    device_attribute = SimpleNamespace(INTEGRATED="INTEGRATED")

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.freed: list[int] = []
        driver = self

        class Device:
            @staticmethod
            def count() -> int:
                return 1

            def __init__(self, index: int) -> None:
                self.index = index

            def name(self) -> str:
                return "Orin (nvgpu)"

            def compute_capability(self) -> tuple[int, int]:
                return 8, 7

            def total_memory(self) -> int:
                return 30 << 30

            def get_attribute(self, attr: str) -> int:
                return 1

            def retain_primary_context(self):
                return SimpleNamespace(push=lambda: driver.stack.append("primary"))

        class Allocation(int):
            def free(self) -> None:
                driver.freed.append(int(self))

        self.Device = Device
        self.Context = SimpleNamespace(pop=lambda: self.stack.pop())
        self.mem_alloc = lambda nbytes: Allocation(0x1000 + nbytes)
        self.Stream = lambda: SimpleNamespace(handle=0x55, synchronize=lambda: None)
        self.Event = lambda: SimpleNamespace(record=lambda stream: None,
                                             time_since=lambda start: 2.5)  # fmt: skip
        self.copies: list[tuple[str, object, object]] = []

    def memcpy_htod_async(self, dest, src, stream) -> None:
        self.copies.append(("htod", dest, src))

    def memcpy_dtoh_async(self, dest, src, stream) -> None:
        self.copies.append(("dtoh", dest, src))

    def init(self) -> None:
        pass

    @staticmethod
    def pagelocked_empty(count, dtype):
        return np.empty(count, dtype)


def test_pycuda_api():
    drv = FakeDriver()
    api = PyCudaApi(drv)
    info = api.device_info(0)
    assert (info.name, info.sm, info.integrated) == ("Orin (nvgpu)", "8.7", True)
    with api.bind(0):
        assert drv.stack == ["primary"]  # pushed for the block...
    assert drv.stack == []  # ...and popped after it
    ptr = api.malloc(64)
    api.free(ptr)
    assert drv.freed == [ptr]
    stream = api.stream_create()
    assert api.stream_handle(stream) == 0x55
    host = api.pinned_empty(4, np.dtype(np.float32))
    api.memcpy_htod_async(ptr, host, stream)
    api.memcpy_dtoh_async(host, ptr, stream)
    assert drv.copies == [("htod", ptr, host), ("dtoh", host, ptr)]
    start, end = api.event_create(), api.event_create()
    api.event_record(start, stream)
    assert api.event_elapsed_ms(start, end) == 2.5


def test_get_cuda_api_without_either_library(monkeypatch):
    real_import = importlib.import_module

    def no_cuda(name: str, *args: object):
        if name.startswith(("cuda", "pycuda")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(cuda_mem.importlib, "import_module", no_cuda)
    with pytest.raises(BackendUnavailable, match=r"neither cuda-python nor pycuda.*pip install"):
        cuda_mem.get_cuda_api()
    with pytest.raises(BackendUnavailable, match="unknown 'cupy'"):
        cuda_mem.get_cuda_api("cupy")


def test_get_cuda_api_prefers_cuda_python(monkeypatch):
    rt = FakeCudart()
    real_import = importlib.import_module
    monkeypatch.setattr(cuda_mem.importlib, "import_module",
                        lambda name, *a: rt if name == "cuda.bindings.runtime" else
                        real_import(name, *a))  # fmt: skip
    api = cuda_mem.get_cuda_api()
    assert isinstance(api, CudaPythonApi) and api.rt is rt


class OldDriverCudart(FakeCudart):
    """cuda-python 13 on a CUDA 12 driver: imports fine, every call says InsufficientDriver."""

    def cudaGetDeviceCount(self):
        return cudaError_t.cudaErrorInsufficientDriver, 0


def _libraries(monkeypatch, cudart, driver):
    real_import = importlib.import_module
    found = {"cuda.bindings.runtime": cudart, "pycuda.driver": driver}

    def fake_import(name: str, *args: object):
        if name in found:
            if found[name] is None:
                raise ImportError(f"No module named {name!r}")
            return found[name]
        return real_import(name, *args)

    monkeypatch.setattr(cuda_mem.importlib, "import_module", fake_import)


def test_get_cuda_api_falls_back_to_pycuda_when_cuda_python_cannot_reach_the_driver(
    monkeypatch, caplog
):
    _libraries(monkeypatch, OldDriverCudart(), FakeDriver())
    caplog.set_level(logging.WARNING)
    api = cuda_mem.get_cuda_api()
    assert isinstance(api, PyCudaApi)
    assert "cuda-python cannot talk to the driver" in caplog.text
    assert "cudaErrorInsufficientDriver" in caplog.text


def test_get_cuda_api_without_a_working_driver_keeps_cuda_python_for_the_error(monkeypatch):
    _libraries(monkeypatch, OldDriverCudart(), None)
    api = cuda_mem.get_cuda_api()
    assert isinstance(api, CudaPythonApi)
    with pytest.raises(BackendUnavailable, match=r"InsufficientDriver.*cuda-python>=12,<13"):
        cuda_mem.require_device(api)


def test_require_device():
    assert cuda_mem.require_device(CudaPythonApi(FakeCudart()), 0).name == "NVIDIA Fake 3000"
    with pytest.raises(BackendUnavailable, match=r"no CUDA GPU usable here.*cudaErrorNoDevice"):
        cuda_mem.require_device(CudaPythonApi(FakeCudart(devices=0)))
    with pytest.raises(BackendUnavailable, match=r"device 3 does not exist. Expected 0..0"):
        cuda_mem.require_device(CudaPythonApi(FakeCudart()), 3)


def _names_used_on(attribute: str, cls: type) -> set[str]:
    """Every `self.<attribute>.NAME` in the source of `cls`."""
    tree = ast.parse(inspect.getsource(cls))
    return {
        node.attr for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
        and node.value.attr == attribute
    }  # fmt: skip


def test_stand_ins_cover_what_the_code_calls():
    """The stand-ins above implement every cudart/driver name the implementations use."""
    assert _names_used_on("rt", CudaPythonApi) <= set(dir(FakeCudart))
    assert _names_used_on("drv", PyCudaApi) <= set(dir(FakeDriver())) | {"Device", "Context"}


def test_real_cuda_bindings_have_every_name_we_call():
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed")
    missing = sorted(n for n in _names_used_on("rt", CudaPythonApi) if not hasattr(runtime, n))
    assert missing == []
    assert runtime.cudaMemcpyKind.cudaMemcpyHostToDevice is not None


def test_real_cuda_bindings_without_a_gpu_say_so():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed")
    api = CudaPythonApi()
    try:
        count = api.device_count()
    except CudaError:
        count = 0
    if count:
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        cuda_mem.require_device(api)
