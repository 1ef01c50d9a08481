"""Dynamic batching: one worker thread owns the model; concurrent requests share its calls.

Requests arrive from many threads (or the event loop) with one prepared mask each. The worker
takes the first waiting request, then keeps collecting for at most `max_delay_ms` or until
`max_batch` requests are waiting, and runs them as one `MaskToEcho.run_prepared` call - the way
Triton's dynamic batcher trades a few milliseconds of queueing for a fuller batch. Each caller
gets its own frame back through a `concurrent.futures.Future`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import ConfigError, EchogenError
from echogen_trt.runtime.mask_to_echo import MaskToEcho

log = logging.getLogger(__name__)


@dataclass
class _Request:
    prepared: np.ndarray
    future: Future[np.ndarray]


class Closed(EchogenError):
    """The batcher is stopping; no new requests are taken."""


class DynamicBatcher:
    """Group prepared masks into batches of up to `max_batch` within `max_delay_ms`.

    `on_batch(size, seconds)` is called after every model call (metrics). `start()` opens the
    model on the worker thread; `stop()` finishes what is queued, then closes it.
    """

    def __init__(
        self,
        gen: MaskToEcho,
        *,
        max_batch: int = 8,
        max_delay_ms: float = 5.0,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ConfigError(f"--max-batch | {max_batch}. Expected an integer >= 1.")
        if max_delay_ms < 0:
            raise ConfigError(f"--max-delay-ms | {max_delay_ms}. Expected a number >= 0.")
        self.gen = gen
        self.max_batch = max_batch
        self.max_delay_s = max_delay_ms / 1000.0
        self.on_batch = on_batch
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="echogen-batcher", daemon=True)
        self._ready = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self.meta: ModelMeta | None = None  # set once the worker has opened the model

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> None:
        """Open the model on the worker thread; raise what opening raised."""
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._error is None and not self._closed

    def stop(self) -> None:
        """Take no new requests, serve the queued ones, close the model."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join()

    # -- requests --------------------------------------------------------------------------
    def submit(self, prepared: np.ndarray) -> Future[np.ndarray]:
        """A future for the frame of one mask already passed through `gen.prepare`."""
        if self._closed:
            raise Closed("server | shutting down. Expected a running server. Hint: retry.")
        future: Future[np.ndarray] = Future()
        self._queue.put(_Request(prepared, future))
        return future

    def _work(self) -> None:
        try:
            self.gen.open()
            self.meta = self.gen.backend.meta
        except Exception as err:  # reported by start() in the caller's thread
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        try:
            while (batch := self._collect()) is not None:
                self._run(batch)
        finally:
            self.gen.close()
            self._refuse_left()

    def _refuse_left(self) -> None:
        """Requests that raced stop() get an error rather than waiting forever."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.future.set_exception(Closed("server | stopped. Hint: retry."))

    def _collect(self) -> list[_Request] | None:
        """The next batch: block for one request, then gather more until full or late."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.perf_counter() + self.max_delay_s
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stop(): serve this batch, then end
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        start = time.perf_counter()
        try:
            frames = self.gen.run_prepared([r.prepared for r in batch])
        except Exception as err:  # the callers report it; the worker keeps serving
            log.exception("batch of %d failed", len(batch))
            for request in batch:
                request.future.set_exception(err)
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - start)
        for request, frame in zip(batch, frames, strict=True):
            request.future.set_result(frame)
