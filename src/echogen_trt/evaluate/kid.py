"""Kernel Inception Distance: an unbiased distance between two sets of image features (numpy).

KID (Binkowski et al. 2018) is the squared maximum mean discrepancy (MMD^2) between the feature
distributions of real and generated images, with the polynomial kernel k(x, y) = (x.y / d + 1)^3,
estimated without bias: the diagonal terms k(x_i, x_i) are left out of the within-set means, so
two samples of one distribution score 0 on average (single estimates scatter around it and can be
slightly negative). It is computed on random subsets of both sets and reported as the mean and
standard deviation over the subsets, as the clean-fid and torchmetrics implementations do. Unlike
FID it is unbiased for small sets, which is why it suits test sets of tens of frames.
"""

from __future__ import annotations

import numpy as np

from echogen_trt.errors import ConfigError, InputMismatch

MAX_SUBSET = 1000  # the usual subset size (torchmetrics, clean-fid) for large sets


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(m, n) matrix of (x_i . y_j / d + 1)^3 for features x (m, d) and y (n, d)."""
    d = x.shape[1]
    result: np.ndarray = (x @ y.T / d + 1.0) ** 3
    return result


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate between feature sets x (m, d) and y (n, d), m, n >= 2."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise InputMismatch(
            f"features | x has {x.shape[1]} dimensions, y {y.shape[1]}. Expected the same."
        )
    m, n = len(x), len(y)
    k_xx, k_yy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


def default_subset_size(m: int, n: int) -> int:
    """Half the smaller set (so that subsets differ and their spread means something), at most
    MAX_SUBSET and at least 2."""
    return max(2, min(MAX_SUBSET, min(m, n) // 2))


def kid(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    n_subsets: int = 100,
    subset_size: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over `n_subsets` random subsets of both feature sets.

    Each subset draws `subset_size` rows of each set without replacement (default
    `default_subset_size`); `seed` makes the draw reproducible.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    size = default_subset_size(len(real), len(fake)) if subset_size is None else subset_size
    if n_subsets < 1 or not 2 <= size <= min(len(real), len(fake)):
        raise ConfigError(
            f"KID | {n_subsets} subsets of {size} rows for sets of {len(real)} and {len(fake)}. "
            "Expected at least 1 subset and 2 <= subset size <= the smaller set."
        )
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            real[rng.choice(len(real), size, replace=False)],
            fake[rng.choice(len(fake), size, replace=False)],
        )
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def _features(a: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(a, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise InputMismatch(
            f"{name} features | shape {f.shape}. Expected (N, d) with N >= 2 (KID needs at "
            "least two images per set)."
        )
    return f


KID_MIN_FRAMES = 30  # below this many frames per set, KID cannot separate generators (README)


def kid_null(
    real: np.ndarray,
    pool: np.ndarray,
    *,
    draws: int = 50,
    n_subsets: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """KID means of `real` against `draws` random sets of other real frames (rows of `pool`) of
    the same size: the values KID takes when nothing but the sample differs (its null).

    Each draw takes len(real) rows of `pool` (without replacement where the pool is large enough)
    and computes `kid` with `n_subsets` subsets, as the measured value is computed.
    """
    real, pool = _features(real, "real"), _features(pool, "pool")
    rng = np.random.default_rng(seed + 1)
    n = len(real)
    out = []
    for k in range(draws):
        rows = rng.choice(len(pool), n, replace=len(pool) < n)
        out.append(kid(real, pool[rows], n_subsets=n_subsets, seed=seed + k)[0])
    return np.array(out)


def null_test(value: float, null: np.ndarray) -> dict[str, float]:
    """The measured KID against its null: the null's mean, std and 95th percentile, z and the
    one-sided p-value (share of null values at least as large, with the +1 correction)."""
    mean, std = float(null.mean()), float(null.std(ddof=1)) if len(null) > 1 else 0.0
    return {
        "null_mean": mean,
        "null_std": std,
        "null_p95": float(np.percentile(null, 95)),
        "z": (value - mean) / std if std > 0 else float("nan"),
        "p": float((1 + np.sum(null >= value)) / (1 + len(null))),
        "null_draws": len(null),
    }
