"""KID: the unbiased MMD^2 with the cubic polynomial kernel, checked against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from echogen_trt.errors import ConfigError, InputMismatch
from echogen_trt.evaluate.kid import kid, mmd2_unbiased, polynomial_kernel


def test_kernel_and_mmd_by_hand_on_two_points_each() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 1.0], [2.0, 0.0]])
    # k(a, b) = (a.b / 2 + 1)^3
    assert polynomial_kernel(x, y).tolist() == [[1.5**3, 2.0**3], [1.5**3, 1.0]]
    within_x = 1.0  # off-diagonal pair: x0.x1 = 0 -> 1
    within_y = 2.0**3  # y0.y1 = 2 -> 2^3
    across = (1.5**3 + 2.0**3 + 1.5**3 + 1.0) / 4
    assert mmd2_unbiased(x, y) == pytest.approx(within_x + within_y - 2 * across)


def test_identical_sets_give_the_closed_form_near_zero_and_shifted_sets_a_large_value() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8))
    k = polynomial_kernel(x, x)
    off = (k.sum() - np.trace(k)) / (50 * 49)
    # identical sets: 2 x off-diagonal mean - 2 x full mean = 2/m (off - diagonal mean)
    assert mmd2_unbiased(x, x) == pytest.approx(2 / 50 * (off - np.trace(k) / 50))
    same = kid(x, rng.normal(size=(50, 8)), seed=1)[0]
    shifted = kid(x, rng.normal(size=(50, 8)) + 1.0, seed=1)[0]
    assert abs(same) < 0.1
    assert shifted > 1.0  # roughly (mean shift)^2 terms of the cubic kernel


def test_estimate_is_unbiased_where_the_plug_in_one_is_not() -> None:
    """Averaged over many pairs of samples of one distribution, the estimate is ~0; the biased
    V-statistic (diagonal included) stays clearly positive."""
    rng = np.random.default_rng(3)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
        unbiased.append(mmd2_unbiased(x, y))
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    stderr = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * stderr
    assert np.mean(biased) > 10 * stderr


def test_kid_is_reproducible_and_reports_a_spread() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 0.5
    mean, std = kid(x, y, n_subsets=20, seed=7)
    assert (mean, std) == kid(x, y, n_subsets=20, seed=7)
    assert std > 0  # default subsets are half the smaller set, so they differ


def test_bad_inputs_are_user_errors() -> None:
    with pytest.raises(InputMismatch, match=r"real features \| shape \(1, 3\)"):
        kid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(InputMismatch, match="x has 3 dimensions, y 4"):
        mmd2_unbiased(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ConfigError, match="subset size"):
        kid(np.zeros((5, 3)), np.zeros((5, 3)), subset_size=6)
