"""Warm-up parsing, the trtexec-style stopping rule and the timed loop (no speed asserts)."""

from __future__ import annotations

import pytest

from echogen_trt.bench import timing
from echogen_trt.bench.timing import StopRule, WarmUp, parse_warmup, stop_rule, time_loop
from echogen_trt.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", WarmUp(5, 0.0)),
        ("0", WarmUp(0, 0.0)),
        ("1.5s", WarmUp(1, 1.5)),
        ("500ms", WarmUp(1, 0.5)),
        (" 2 s ", WarmUp(1, 2.0)),
        (None, WarmUp(timing.DEFAULT_WARMUP_ITERATIONS, timing.DEFAULT_WARMUP_S)),
    ],
)
def test_parse_warmup(text: str | None, expected: WarmUp) -> None:
    assert parse_warmup(text) == expected


@pytest.mark.parametrize("text", ["abc", "1.5", "-1", "2min"])
def test_parse_warmup_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--warmup"):
        parse_warmup(text)


def test_stop_rule_follows_trtexec() -> None:
    assert stop_rule(7, None) == StopRule(7, 0.0, max_iterations=7)  # exactly N
    assert stop_rule(None, 2.5) == StopRule(1, 2.5)  # until S seconds
    assert stop_rule(7, 2.5) == StopRule(7, 2.5)  # both are minimums
    default = stop_rule(None, None)
    assert default == StopRule(timing.DEFAULT_MIN_ITERATIONS, timing.DEFAULT_DURATION_S)


@pytest.mark.parametrize(("iterations", "duration"), [(0, None), (-3, 1.0), (None, -1.0)])
def test_stop_rule_rejects(iterations: int | None, duration: float | None) -> None:
    with pytest.raises(ConfigError, match=r"--iterations|--duration"):
        stop_rule(iterations, duration)


def test_time_loop_runs_warmup_then_exactly_n_timed_calls() -> None:
    calls: list[int] = []
    stage_calls = iter(range(100))

    def stages() -> dict[str, float]:
        k = next(stage_calls)
        return {"h2d": 0.1 * k, "compute": 1.0}

    timed = time_loop(lambda: calls.append(1), WarmUp(3, 0.0), stop_rule(4, None), stages)
    assert len(calls) == 3 + 4
    assert len(timed.samples_ms) == 4 and all(ms >= 0 for ms in timed.samples_ms)
    assert timed.stages_ms == {"h2d": [0.0, 0.1, 0.2, pytest.approx(0.3)], "compute": [1.0] * 4}
    assert timed.total_s >= sum(timed.samples_ms) / 1e3  # the loop contains every call


def test_time_loop_duration_is_a_minimum() -> None:
    timed = time_loop(lambda: None, WarmUp(0, 0.0), stop_rule(2, 0.02))
    assert len(timed.samples_ms) >= 2
    assert timed.total_s >= 0.02
