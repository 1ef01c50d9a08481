"""Latency statistics against values computed independently by hand or by sorted indexing."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from echogen_trt.bench import stats
from echogen_trt.errors import ConfigError


def nearest_rank(samples: list[float], q: int) -> float:
    """The textbook nearest-rank percentile: sorted[ceil(q/100 * n) - 1] (exact arithmetic)."""
    ordered = sorted(samples)
    rank = math.ceil(Fraction(q, 100) * len(ordered))
    return ordered[max(rank, 1) - 1]


def trtexec_percentile(samples: list[float], q: int) -> float:
    """trtexec's findPercentile: sorted[max(n - 1 - floor((1 - q/100) * n), 0)]."""
    ordered = sorted(samples)
    n = len(ordered)
    exclude = math.floor((1 - Fraction(q, 100)) * n)
    return ordered[max(n - 1 - exclude, 0)]


def test_summary_of_one_to_ten_by_hand() -> None:
    s = stats.summarize([float(v) for v in range(10, 0, -1)])  # order must not matter
    assert (s.n, s.min, s.max) == (10, 1.0, 10.0)
    assert s.mean == pytest.approx(5.5)
    assert s.median == pytest.approx(5.5)  # mean of the two middle values, as trtexec
    assert (s.p90, s.p95, s.p99) == (9.0, 10.0, 10.0)  # ranks ceil(9)=9, ceil(9.5)=10, 10
    assert s.std == pytest.approx(math.sqrt(8.25))  # population variance of 1..10 is 8.25
    assert s.cv_pct == pytest.approx(math.sqrt(8.25) / 5.5 * 100)


def test_four_values_by_hand() -> None:
    s = stats.summarize([40.0, 10.0, 30.0, 20.0])
    assert s.median == 25.0
    assert stats.percentile([40.0, 10.0, 30.0, 20.0], 50) == 20.0  # rank ceil(2) = 2
    assert s.p90 == 40.0  # rank ceil(3.6) = 4


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 19, 20, 99, 100, 101, 257])
def test_percentiles_agree_with_sorted_index_and_trtexec(n: int) -> None:
    rng = np.random.default_rng(n)
    samples = [float(v) for v in rng.gamma(2.0, 3.0, size=n)]
    s = stats.summarize(samples)
    for q, got in ((90, s.p90), (95, s.p95), (99, s.p99)):
        assert got == nearest_rank(samples, q)
        assert got == trtexec_percentile(samples, q)
    for q in (0, 1, 50, 75, 100):
        assert stats.percentile(samples, q) == nearest_rank(samples, q)


def test_cv_is_population_std_over_mean_in_percent() -> None:
    assert stats.coefficient_of_variation([2.0, 4.0]) == pytest.approx(100 / 3)  # std 1, mean 3
    assert stats.coefficient_of_variation([5.0] * 4) == 0.0
    assert math.isinf(stats.coefficient_of_variation([0.0, 0.0]))


def test_cv_warning_fires_on_spread_and_not_on_a_flat_series() -> None:
    spread = stats.summarize([1.0, 10.0, 1.0, 10.0, 1.0, 10.0])
    flat = stats.summarize([5.0, 5.01, 4.99, 5.0, 5.02, 4.98])
    warning = stats.cv_warning(spread, "onnxrt batch 8 latency")
    assert warning is not None
    assert "onnxrt batch 8 latency is unstable" in warning and f"{spread.cv_pct:.1f}%" in warning
    assert stats.cv_warning(flat, "x") is None
    # trtexec's 1 % threshold catches the small spread the 10 % default lets through
    small = stats.summarize([5.0, 5.2, 4.8, 5.0, 5.3, 4.7])
    assert stats.CV_WARN_PCT > small.cv_pct > 1.0
    assert stats.cv_warning(small, "x") is None
    assert stats.cv_warning(small, "x", stats.TRTEXEC_CV_WARN_PCT) is not None
    assert stats.cv_warning(stats.summarize([1.0]), "x") is None  # one sample: no spread


def test_throughput_is_frames_over_wall_time_not_inverse_mean() -> None:
    # two 10 ms calls of batch 8 inside a 50 ms loop (40 ms of gaps): 16 frames / 0.05 s
    assert stats.throughput(16, 0.05) == pytest.approx(320.0)
    assert stats.throughput(16, 0.05) != pytest.approx(8 / 0.010)


def test_scaled_divides_durations_but_not_count_or_cv() -> None:
    per_batch = stats.summarize([8.0, 16.0, 24.0])
    per_frame = per_batch.scaled(8)
    assert (per_frame.mean, per_frame.min, per_frame.max, per_frame.p99) == (2.0, 1.0, 3.0, 3.0)
    assert per_frame.n == 3 and per_frame.cv_pct == pytest.approx(per_batch.cv_pct)


@pytest.mark.parametrize(
    ("samples", "match"),
    [([], "no samples"), ([1.0, float("nan")], "NaN or inf"), ([1.0, float("inf")], "NaN")],
)
def test_bad_series_raise(samples: list[float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        stats.summarize(samples)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ConfigError, match="q=101 is out of range"):
        stats.percentile([1.0], 101)
    with pytest.raises(ConfigError, match="Expected a positive duration"):
        stats.throughput(4, 0.0)
