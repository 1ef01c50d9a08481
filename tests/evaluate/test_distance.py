"""HD95 and mean absolute distance in millimetres, on shapes whose distances are known."""

from __future__ import annotations

import numpy as np
import pytest

from echogen_trt.evaluate.distance import hd95_mad, mean_distances


def square(shift: int = 0) -> np.ndarray:
    m = np.zeros((40, 40), bool)
    m[10:20, 10 + shift : 20 + shift] = True
    return m


def test_a_shifted_square_is_as_far_as_the_shift_in_mm() -> None:
    assert hd95_mad(square(), square(), (0.5, 2.0)) == (0.0, 0.0)
    hd95, mad = hd95_mad(square(), square(3), (0.5, 2.0))  # 3 columns of 2 mm
    assert hd95 == pytest.approx(6.0)
    assert 0.0 < mad < 6.0  # the top and bottom edges overlap in part
    # rows are 0.5 mm: the same shift along the rows is four times shorter
    hd95_rows, _ = hd95_mad(square().T, square(3).T, (0.5, 2.0))
    assert hd95_rows == pytest.approx(1.5)


def test_a_missing_structure_is_counted_not_averaged() -> None:
    pred = np.stack([square(), np.zeros((40, 40), bool)]).astype(np.uint8)
    target = np.stack([square(2), square()]).astype(np.uint8)
    out = mean_distances(pred, target, np.ones((2, 2)), {"lv": (1,)})["lv"]
    assert out["missing"] == 1 and out["hd95_mm"] == pytest.approx(2.0)
    assert np.isnan(hd95_mad(np.zeros((5, 5)), square()[:5, :5], (1.0, 1.0))[0])
