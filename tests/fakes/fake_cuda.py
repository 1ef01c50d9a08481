"""A fake `CudaApi`: "device" memory is numpy, streams are queues run at synchronize.

Strict where real CUDA is unforgiving, so the backend's buffer logic is tested for real:

- async copies and kernels are queued per stream and run only at `stream_synchronize`, so a
  backend that reads outputs before synchronising reads stale memory;
- a copy reads the host array when it runs, not when it is queued (as a DMA does);
- every device access is bounds-checked against its allocation;
- copies from pageable (non-pinned) host memory are counted;
- allocations, streams and events are tracked, so leaks and double frees show.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from echogen_trt.runtime.gpu.cuda_mem import CudaApi, CudaError, DeviceInfo, host_array

FAKE_GPU = DeviceInfo(0, "NVIDIA FakeGPU 4090", (8, 9), 24_000, integrated=False)
FAKE_JETSON = DeviceInfo(0, "Orin (nvgpu)", (8, 7), 30_000, integrated=True)


@dataclass
class FakeCuda(CudaApi):
    """In-memory CUDA. `devices` is the list of GPUs this "machine" has."""

    devices: list[DeviceInfo] = field(default_factory=lambda: [FAKE_GPU])
    name: str = "fake"
    memory: dict[int, np.ndarray] = field(default_factory=dict)  # device ptr -> uint8 bytes
    pinned: list[np.ndarray] = field(default_factory=list)
    queues: dict[int, list[Callable[[], None]]] = field(default_factory=dict)
    events: dict[int, float | None] = field(default_factory=dict)
    pageable_copies: int = 0
    syncs: int = 0
    bound: list[int] = field(default_factory=list)  # devices bound, in order
    current: list[int] = field(default_factory=list)  # bindings open now (innermost last)
    _host: dict[int, Any] = field(default_factory=dict)  # pinned address -> ctypes buffer
    _next_ptr: int = 0x7F00_0000_0000
    _next_handle: int = 0x1000

    # -- devices ---------------------------------------------------------------------------
    def device_count(self) -> int:
        return len(self.devices)

    def device_info(self, index: int) -> DeviceInfo:
        return self.devices[index]

    @contextlib.contextmanager
    def bind(self, index: int) -> Iterator[None]:
        if not 0 <= index < len(self.devices):
            raise CudaError(f"cudaSetDevice | invalid device ordinal {index}")
        self.bound.append(index)
        self.current.append(index)
        try:
            yield
        finally:
            self.current.pop()

    # -- memory ----------------------------------------------------------------------------
    def pinned_empty(self, count: int, dtype: np.dtype[Any]) -> np.ndarray:
        # real host memory viewed through cuda_mem.host_array, as cuda-python's path does
        # (float16 included); garbage-filled like cudaMallocHost, so unzeroed padding shows up
        nbytes = max(count, 1) * np.dtype(dtype).itemsize
        buf = ctypes.create_string_buffer(b"\xab" * nbytes, nbytes)
        self._host[ctypes.addressof(buf)] = buf
        array = host_array(ctypes.addressof(buf), count, np.dtype(dtype))
        self.pinned.append(array)
        return array

    def free_pinned(self, array: np.ndarray) -> None:
        for i, held in enumerate(self.pinned):
            if held is array:
                del self.pinned[i]
                del self._host[array.ctypes.data]
                return
        raise CudaError("cudaFreeHost | not a pinned allocation (double free?)")

    def is_pinned(self, array: np.ndarray) -> bool:
        return any(np.shares_memory(array, held) for held in self.pinned)

    def malloc(self, nbytes: int) -> int:
        ptr = self._next_ptr
        self._next_ptr += (max(nbytes, 1) + 511) // 512 * 512 + 512
        self.memory[ptr] = np.full(max(nbytes, 1), 0xCD, np.uint8)  # garbage, as cudaMalloc
        return ptr

    def free(self, ptr: int) -> None:
        if self.memory.pop(ptr, None) is None:
            raise CudaError(f"cudaFree | {ptr:#x} is not allocated (double free?)")

    def device_bytes(self, ptr: int, nbytes: int) -> np.ndarray:
        """Writable uint8 view of `nbytes` at device pointer `ptr`, bounds-checked."""
        block = self.memory.get(ptr)
        if block is None:
            raise CudaError(f"illegal address | {ptr:#x} is not a device allocation")
        if nbytes > block.size:
            raise CudaError(f"illegal address | {nbytes} bytes at {ptr:#x} (size {block.size})")
        return block[:nbytes]

    def memcpy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._check_copy(src)
        self.device_bytes(dst, src.nbytes)  # fail at enqueue time, as CUDA validates
        self.enqueue(stream, lambda: self._h2d(dst, src))

    def memcpy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._check_copy(dst)
        self.device_bytes(src, dst.nbytes)
        self.enqueue(stream, lambda: self._d2h(dst, src))

    def _check_copy(self, host: np.ndarray) -> None:
        if not host.flags.c_contiguous:
            raise CudaError("cudaMemcpyAsync | host array is not contiguous")
        if not self.is_pinned(host):
            self.pageable_copies += 1

    def _h2d(self, dst: int, src: np.ndarray) -> None:
        self.device_bytes(dst, src.nbytes)[:] = src.reshape(-1).view(np.uint8)

    def _d2h(self, dst: np.ndarray, src: int) -> None:
        dst.reshape(-1).view(np.uint8)[:] = self.device_bytes(src, dst.nbytes)

    # -- streams and events ----------------------------------------------------------------
    def stream_create(self) -> int:
        self._next_handle += 1
        self.queues[self._next_handle] = []
        return self._next_handle

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def enqueue(self, stream: int, op: Callable[[], None]) -> None:
        if stream not in self.queues:
            raise CudaError(f"invalid resource handle | stream {stream}")
        self.queues[stream].append(op)

    def stream_synchronize(self, stream: Any) -> None:
        self.syncs += 1
        queue = self.queues[stream]
        while queue:
            queue.pop(0)()

    def stream_destroy(self, stream: Any) -> None:
        if self.queues.pop(stream, None) is None:
            raise CudaError(f"cudaStreamDestroy | unknown stream {stream}")

    def event_create(self) -> int:
        self._next_handle += 1
        self.events[self._next_handle] = None
        return self._next_handle

    def event_record(self, event: Any, stream: Any) -> None:
        self.events[event] = None
        self.enqueue(stream, lambda: self.events.__setitem__(event, time.perf_counter()))

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        a, b = self.events[start], self.events[end]
        if a is None or b is None:
            raise CudaError("cudaEventElapsedTime | cudaErrorNotReady (event not completed)")
        return (b - a) * 1e3

    def event_destroy(self, event: Any) -> None:
        del self.events[event]

    # -- for assertions ----------------------------------------------------------------------
    def live(self) -> dict[str, int]:
        """What is still allocated: all zeros after a clean close."""
        return {
            "device": len(self.memory),
            "pinned": len(self.pinned),
            "streams": len(self.queues),
            "events": len(self.events),
        }
