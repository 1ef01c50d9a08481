"""DynamicBatcher with a stand-in model: grouping, routing of results, errors, stop."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from echogen_trt.errors import ConfigError, InputMismatch
from echogen_trt.serve.batcher import Closed, DynamicBatcher, Overloaded

WARM_UP = -1  # what FakeGen.prepare makes of the batcher's warm-up mask


class FakeGen:
    """run_prepared returns each mask + 1, records batch sizes (not the warm-up's); `fail_on`
    raises for a value."""

    model = "fake.onnx"
    input_size = (2, 2)

    def __init__(self, fail_on: int | None = None, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.fail_on, self.delay = fail_on, delay
        self.opened = self.closed = False
        self.backend = type("B", (), {"meta": "meta"})()
        self.thread: str | None = None

    def prepare(self, mask: np.ndarray) -> np.ndarray:
        return np.full(mask.shape, WARM_UP, np.int64)

    def open(self) -> FakeGen:
        self.opened = True
        return self

    def close(self) -> None:
        self.closed = True

    def run_prepared(self, prepared: list[np.ndarray]) -> np.ndarray:
        self.thread = threading.current_thread().name
        if all(int(p[0, 0]) == WARM_UP for p in prepared):
            return np.stack(prepared)
        time.sleep(self.delay)
        self.batches.append(len(prepared))
        if self.fail_on is not None and any(int(p[0, 0]) == self.fail_on for p in prepared):
            raise InputMismatch("input 'mask' | boom.")
        return np.stack(prepared) + 1


def submit_many(batcher: DynamicBatcher, values: list[int]) -> list[Future[np.ndarray]]:
    return [batcher.submit(np.full((2, 2), v, np.int64)) for v in values]


def test_waiting_requests_share_calls_up_to_max_batch() -> None:
    gen = FakeGen(delay=0.05)
    batcher = DynamicBatcher(gen, max_batch=4, max_delay_ms=50)  # type: ignore[arg-type]
    batcher.start()
    futures = submit_many(batcher, list(range(10)))
    results = [f.result(timeout=10) for f in futures]
    batcher.stop()
    assert [int(r[0, 0]) for r in results] == [v + 1 for v in range(10)]  # each its own
    assert sum(gen.batches) == 10 and max(gen.batches) == 4 and len(gen.batches) < 10
    assert gen.thread == "echogen-batcher" and gen.closed


def test_max_batch_1_runs_each_request_alone() -> None:
    gen = FakeGen()
    batcher = DynamicBatcher(gen, max_batch=1, max_delay_ms=50)  # type: ignore[arg-type]
    batcher.start()
    for f in submit_many(batcher, list(range(5))):
        f.result(timeout=10)
    batcher.stop()
    assert gen.batches == [1] * 5


def test_a_lone_request_waits_at_most_max_delay() -> None:
    gen = FakeGen()
    batcher = DynamicBatcher(gen, max_batch=64, max_delay_ms=5000)  # type: ignore[arg-type]
    batcher.max_delay_s = 0.2
    batcher.start()
    t0 = time.perf_counter()
    submit_many(batcher, [1])[0].result(timeout=10)
    waited = time.perf_counter() - t0
    batcher.stop()
    assert 0.15 < waited < 5.0  # it did wait for company, and then ran anyway


def test_a_failed_batch_fails_its_callers_and_the_worker_goes_on() -> None:
    gen = FakeGen(fail_on=3)
    batcher = DynamicBatcher(gen, max_batch=1, max_delay_ms=0)  # type: ignore[arg-type]
    batcher.start()
    bad, good = submit_many(batcher, [3, 4])
    with pytest.raises(InputMismatch, match="boom"):
        bad.result(timeout=10)
    assert int(good.result(timeout=10)[0, 0]) == 5
    batcher.stop()


def test_stop_serves_what_is_queued_then_refuses() -> None:
    gen = FakeGen(delay=0.02)
    batcher = DynamicBatcher(gen, max_batch=2, max_delay_ms=1)  # type: ignore[arg-type]
    batcher.start()
    futures = submit_many(batcher, list(range(6)))
    batcher.stop()
    assert [int(f.result(timeout=10)[0, 0]) for f in futures] == list(range(1, 7))
    assert not batcher.ready
    with pytest.raises(Closed, match="shutting down"):
        batcher.submit(np.zeros((2, 2)))


def test_an_open_failure_is_raised_by_start() -> None:
    gen = FakeGen()
    gen.open = lambda: (_ for _ in ()).throw(ConfigError("model | broken."))  # type: ignore[method-assign]
    batcher = DynamicBatcher(gen, max_batch=2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="broken"):
        batcher.start()
    assert not batcher.ready


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"max_batch": 0}, "max-batch"), ({"max_delay_ms": -1}, "max-delay")]
)
def test_bad_settings_are_config_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DynamicBatcher(FakeGen(), **kwargs)  # type: ignore[arg-type]


def test_a_caller_that_gave_up_is_skipped_and_the_worker_lives_on() -> None:
    gen = FakeGen(delay=0.2)
    batcher = DynamicBatcher(gen, max_batch=1, max_delay_ms=0)  # type: ignore[arg-type]
    batcher.start()
    busy, gave_up = submit_many(batcher, [1, 2])  # the second waits while the first runs
    assert gave_up.cancel()
    assert int(busy.result(timeout=10)[0, 0]) == 2
    later = submit_many(batcher, [5])[0]
    assert int(later.result(timeout=10)[0, 0]) == 6  # before the fix: the worker had died
    assert batcher.ready and gen.batches == [1, 1]  # the cancelled one never ran
    batcher.stop()


def test_ready_is_false_when_the_worker_is_dead() -> None:
    batcher = DynamicBatcher(FakeGen(), max_batch=1)  # type: ignore[arg-type]
    batcher.start()
    assert batcher.ready
    batcher._queue.put(None)  # the worker ends as if it had crashed
    batcher._thread.join(timeout=10)
    assert not batcher.ready
    with pytest.raises(Closed, match="worker is not running"):
        batcher.submit(np.zeros((2, 2)))
    batcher.stop()


def test_a_full_queue_refuses_at_once() -> None:
    gen = FakeGen(delay=0.3)
    batcher = DynamicBatcher(gen, max_batch=1, max_delay_ms=0, max_queue=2)  # type: ignore[arg-type]
    batcher.start()
    first = submit_many(batcher, [0])[0]
    time.sleep(0.1)  # the worker has taken it; two more fill the queue
    queued = submit_many(batcher, [1, 2])
    with pytest.raises(Overloaded, match="2 masks already wait"):
        batcher.submit(np.zeros((2, 2), np.int64))
    assert [int(f.result(timeout=10)[0, 0]) for f in [first, *queued]] == [1, 2, 3]
    batcher.stop()


def test_a_model_that_cannot_run_is_refused_by_start_in_one_line() -> None:
    gen = FakeGen()
    gen.prepare = lambda mask: np.full(mask.shape, 3, np.int64)  # type: ignore[method-assign]
    gen.fail_on = 3
    batcher = DynamicBatcher(gen)  # type: ignore[arg-type]
    with pytest.raises(InputMismatch, match=r"fake.onnx \| the warm-up inference failed") as err:
        batcher.start()
    assert "\n" not in str(err.value) and not batcher.ready and gen.closed
