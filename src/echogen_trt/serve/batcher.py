"""Dynamic batching: one worker thread owns the model; concurrent requests share its calls.

Requests arrive from many threads (or the event loop) with one prepared mask each. The worker
takes the first waiting request, then keeps collecting for at most `max_delay_ms` or until
`max_batch` requests are waiting, and runs them as one `MaskToEcho.run_prepared` call - the way
Triton's dynamic batcher trades a few milliseconds of queueing for a fuller batch. Each caller
gets its own frame back through a `concurrent.futures.Future`.

The worker must not die: a caller that gave up (a cancelled future) is skipped, a failing batch
fails its callers only, and `ready` is false whenever the worker thread is not alive. The queue
is bounded: a full queue refuses at once (`Overloaded`, a 503 with Retry-After) rather than
growing latency without limit. `start()` runs one warm-up inference, so a model that cannot run
is refused before the service says it is ready.
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
from echogen_trt.errors import ConfigError, EchogenError, InputMismatch
from echogen_trt.runtime.mask_to_echo import MaskToEcho

log = logging.getLogger(__name__)


@dataclass
class _Request:
    prepared: np.ndarray
    future: Future[np.ndarray]


class Closed(EchogenError):
    """The batcher is stopping; no new requests are taken."""


class Overloaded(EchogenError):
    """The queue is full (or a request waited past its deadline): answer 503, retry later."""


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
        max_queue: int = 64,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ConfigError(f"--max-batch | {max_batch}. Expected an integer >= 1.")
        if max_delay_ms < 0:
            raise ConfigError(f"--max-delay-ms | {max_delay_ms}. Expected a number >= 0.")
        if max_queue < 1:
            raise ConfigError(f"--max-queue | {max_queue}. Expected an integer >= 1.")
        self.gen = gen
        self.max_batch = max_batch
        self.max_delay_s = max_delay_ms / 1000.0
        self.on_batch = on_batch
        self.max_queue = max_queue
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="echogen-batcher", daemon=True)
        self._ready = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self.meta: ModelMeta | None = None  # set once the worker has opened the model

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> None:
        """Open the model on the worker thread and run one warm-up inference; raise what that
        raised. Starting a started batcher does nothing."""
        if not self._thread.is_alive() and not self._ready.is_set():
            self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error

    @property
    def ready(self) -> bool:
        """Serving: the model opened and ran, the worker is alive, stop() not called."""
        return (
            self._ready.is_set()
            and self._error is None
            and not self._closed
            and self._thread.is_alive()
        )

    @property
    def waiting(self) -> int:
        """Requests queued and not yet taken into a batch."""
        return self._queue.qsize()

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
        if not self._thread.is_alive():
            raise Closed("server | the model worker is not running. Hint: restart the server.")
        if self._queue.qsize() >= self.max_queue:
            raise Overloaded(
                f"server | {self.max_queue} masks already wait for the model. Expected fewer "
                "requests at once. Hint: retry after the Retry-After seconds."
            )
        future: Future[np.ndarray] = Future()
        self._queue.put(_Request(prepared, future))
        return future

    def _work(self) -> None:
        try:
            self.gen.open()
            self.meta = self.gen.backend.meta
            self._warm_up()
        except Exception as err:  # reported by start() in the caller's thread
            self._error = err
            self._ready.set()
            self.gen.close()
            return
        self._ready.set()
        try:
            while (batch := self._collect()) is not None:
                try:
                    self._run(batch)
                except Exception:  # a bug in a callback must not end the worker
                    log.exception("batch of %d: unexpected error", len(batch))
        finally:
            self.gen.close()
            self._refuse_left()

    def _warm_up(self) -> None:
        """One inference on an empty mask: a model whose inputs do not match its metadata (or
        that cannot run here) fails now, with one line, instead of on every request."""
        try:
            self.gen.run_prepared([self.gen.prepare(np.zeros(self.gen.input_size, np.uint8))])
        except Exception as err:
            detail = " ".join(str(err).split())[:300]
            raise InputMismatch(
                f"{self.gen.model} | the warm-up inference failed ({type(err).__name__}: "
                f"{detail}). Expected a model that runs on an empty mask. Hint: check that its "
                "metadata (input name, size, io) matches the graph, or re-export it."
            ) from err

    def _refuse_left(self) -> None:
        """Requests that raced stop() get an error rather than waiting forever."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
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
        # Callers that gave up (a cancelled future: a deadline, a disconnect) are skipped;
        # the others' futures become RUNNING, so they can no longer be cancelled under us.
        batch = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not batch:
            return
        start = time.perf_counter()
        try:
            frames = self.gen.run_prepared([r.prepared for r in batch])
        except Exception as err:  # the callers report it; the worker keeps serving
            log.exception("batch of %d failed", len(batch))
            for request in batch:
                request.future.set_exception(err)
            return
        for request, frame in zip(batch, frames, strict=True):
            request.future.set_result(frame)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - start)
