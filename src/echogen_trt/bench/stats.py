"""Latency statistics in the shape trtexec reports them, computed the way trtexec computes them.

- Percentiles use numpy's ``method="inverted_cdf"`` (the nearest-rank definition: the smallest
  sample whose empirical CDF reaches q). trtexec's ``findPercentile`` picks
  ``sorted[n - 1 - floor((1 - q) * n)]``, which is the same sample, so p90/p95/p99 here can be
  compared with trtexec's ``percentile(90%)`` lines. The median is numpy's (mean of the two middle
  samples for even n), as in trtexec's ``findMedian``.
- The coefficient of variation is the population standard deviation (ddof=0) over the mean, in
  percent, as trtexec's ``findCoeffOfVariance``.
- Throughput is frames over the total wall time of the timed loop, never 1 / mean latency: the
  loop's own overhead and any gaps between calls count against it, as in trtexec's
  "Total Host Walltime".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from echogen_trt.errors import ConfigError

PERCENTILE_METHOD: Literal["inverted_cdf"] = "inverted_cdf"
PERCENTILES = (90, 95, 99)
# trtexec warns when the GPU compute time's CV exceeds 1 % (kUNSTABLE_PERF_REPORTING_THRESHOLD,
# meant for a GPU with locked clocks). CPU timings on a shared machine are noisier, so our default
# is 10 %; pass cv_warn_pct=1.0 (`--cv-warn 1`) for trtexec's threshold.
TRTEXEC_CV_WARN_PCT = 1.0
CV_WARN_PCT = 10.0


@dataclass(frozen=True)
class Stats:
    """Summary of one series of timings (ms). Field names are the JSON keys."""

    n: int
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    std: float
    cv_pct: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def scaled(self, factor: float) -> Stats:
        """The same series divided by `factor` (e.g. per-batch -> per-frame latency)."""
        d = {k: (v / factor if k not in ("n", "cv_pct") else v) for k, v in asdict(self).items()}
        return Stats(**d)


def _as_array(samples: Sequence[float] | np.ndarray) -> npt.NDArray[np.float64]:
    arr = np.asarray(samples, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ConfigError("timings | no samples to summarise. Expected at least 1, got 0.")
    if not np.all(np.isfinite(arr)):
        raise ConfigError("timings | contain NaN or inf. Expected finite durations in ms.")
    return arr


def percentile(samples: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0..100), nearest-rank (numpy "inverted_cdf", trtexec's choice)."""
    if not 0.0 <= q <= 100.0:
        raise ConfigError(f"percentile | q={q} is out of range. Expected 0 <= q <= 100.")
    return float(np.percentile(_as_array(samples), q, method=PERCENTILE_METHOD))


def coefficient_of_variation(samples: Sequence[float] | np.ndarray) -> float:
    """Population standard deviation over the mean, in percent (inf for a zero mean)."""
    arr = _as_array(samples)
    mean = float(arr.mean())
    if mean == 0.0:
        return float("inf")
    return float(arr.std(ddof=0) / mean * 100.0)


def summarize(samples: Sequence[float] | np.ndarray) -> Stats:
    """mean, median, p90, p95, p99, min, max, std and CV of a series of durations."""
    arr = _as_array(samples)
    p90, p95, p99 = (float(v) for v in np.percentile(arr, PERCENTILES, method=PERCENTILE_METHOD))
    return Stats(
        n=int(arr.size),
        mean=float(arr.mean()),
        median=float(np.median(arr)),
        p90=p90,
        p95=p95,
        p99=p99,
        min=float(arr.min()),
        max=float(arr.max()),
        std=float(arr.std(ddof=0)),
        cv_pct=coefficient_of_variation(arr),
    )


def throughput(frames: int, total_s: float) -> float:
    """Frames per second over the whole timed loop (not 1 / mean latency)."""
    if total_s <= 0.0:
        raise ConfigError(f"throughput | total time {total_s} s. Expected a positive duration.")
    return frames / total_s


CV_HINT = (
    "Hint: run longer (--duration), stop other work on the machine, lock clocks (GPU: "
    "nvidia-smi -lgc; Jetson: sudo jetson_clocks) and compare medians rather than means."
)


def cv_warning(stats: Stats, what: str, threshold_pct: float = CV_WARN_PCT) -> str | None:
    """A trtexec-style warning when the series is unstable, else None (see CV_HINT)."""
    if stats.n < 2 or stats.cv_pct <= threshold_pct:
        return None
    return (
        f"{what} is unstable, with coefficient of variation = {stats.cv_pct:.1f}% "
        f"(> {threshold_pct:g}%)."
    )
