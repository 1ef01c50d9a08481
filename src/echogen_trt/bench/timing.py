"""The timed loop: warm up, then call a step until the stopping rule says enough.

Stopping follows trtexec: `--iterations N` and `--duration S` are both minimums when both are
given (run at least N calls and at least S seconds). Given alone, `iterations` runs exactly N calls
and `duration` runs until S seconds have passed (at least one call). Given neither, the defaults
apply: at least DEFAULT_MIN_ITERATIONS calls and DEFAULT_DURATION_S seconds. Warm-up is likewise
"at least this many calls and at least this long".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from echogen_trt.errors import ConfigError

DEFAULT_DURATION_S = 3.0  # trtexec's --duration default
DEFAULT_MIN_ITERATIONS = 5  # trtexec uses 10; a 256x256 batch of 32 takes seconds on a CPU
DEFAULT_WARMUP_ITERATIONS = 2  # first calls allocate arenas and pick kernels
DEFAULT_WARMUP_S = 0.2  # trtexec's --warmUp default (200 ms)


@dataclass(frozen=True)
class WarmUp:
    """At least `iterations` calls and at least `seconds` of calls before timing starts."""

    iterations: int = DEFAULT_WARMUP_ITERATIONS
    seconds: float = DEFAULT_WARMUP_S


@dataclass(frozen=True)
class StopRule:
    """Run at least `min_iterations` calls and at least `min_seconds`; never more than
    `max_iterations` when set (used for "exactly N")."""

    min_iterations: int
    min_seconds: float
    max_iterations: int | None = None


@dataclass
class Timed:
    """Per-call wall times (ms), the loop's total wall time (s), per-stage times (ms), and the
    CPU seconds the whole process used meanwhile (every thread: a busy machine lengthens the
    wall time, not this)."""

    samples_ms: list[float]
    total_s: float
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: float = 0.0


def parse_warmup(text: str | int | float | None) -> WarmUp:
    """'5' -> 5 calls; '1.5s' or '500ms' -> 1 call and that long; None -> the defaults."""
    if text is None:
        return WarmUp()
    raw = str(text).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)?", raw)
    if not m or (m.group(2) is None and "." in m.group(1)):
        raise ConfigError(
            f"--warmup | {text!r} is not understood. Expected a number of iterations (5) or a "
            "duration (2s, 500ms)."
        )
    value = float(m.group(1))
    if m.group(2) is None:
        return WarmUp(iterations=int(value), seconds=0.0)
    seconds = value / 1000.0 if m.group(2) == "ms" else value
    return WarmUp(iterations=1 if seconds > 0 else 0, seconds=seconds)


def stop_rule(iterations: int | None, duration_s: float | None) -> StopRule:
    """The trtexec-style rule for the given options (see the module docstring)."""
    if iterations is not None and iterations < 1:
        raise ConfigError(f"--iterations | {iterations}. Expected an integer >= 1.")
    if duration_s is not None and duration_s < 0:
        raise ConfigError(f"--duration | {duration_s}. Expected seconds >= 0.")
    if iterations is None and duration_s is None:
        return StopRule(DEFAULT_MIN_ITERATIONS, DEFAULT_DURATION_S)
    if duration_s is None:
        return StopRule(iterations or 1, 0.0, max_iterations=iterations)
    if iterations is None:
        return StopRule(1, duration_s)
    return StopRule(iterations, duration_s)


def _enough(rule: StopRule, calls: int, elapsed: float) -> bool:
    if rule.max_iterations is not None and calls >= rule.max_iterations:
        return True
    return calls >= rule.min_iterations and elapsed >= rule.min_seconds


def time_loop(
    step: Callable[[], object],
    warmup: WarmUp,
    rule: StopRule,
    stages: Callable[[], dict[str, float]] | None = None,
) -> Timed:
    """Warm up, then time `step` call by call; `stages()` after each call adds per-stage ms."""
    start = time.perf_counter()
    calls = 0
    while calls < warmup.iterations or time.perf_counter() - start < warmup.seconds:
        step()
        calls += 1
    timed = Timed([], 0.0)
    loop_start, cpu_start = time.perf_counter(), time.process_time()
    while not _enough(rule, len(timed.samples_ms), time.perf_counter() - loop_start):
        t0 = time.perf_counter()
        step()
        timed.samples_ms.append((time.perf_counter() - t0) * 1e3)
        for name, ms in (stages() if stages else {}).items():
            timed.stages_ms.setdefault(name, []).append(ms)
    timed.total_s = time.perf_counter() - loop_start
    timed.cpu_s = time.process_time() - cpu_start
    return timed
