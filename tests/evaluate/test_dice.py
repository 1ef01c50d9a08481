"""Dice per structure on masks whose overlaps are counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from echogen_trt.errors import InputMismatch
from echogen_trt.evaluate.dice import dice, dice_per_image, mean_dice, structures_for


def test_dice_of_two_boxes_is_twice_the_overlap_over_the_sizes() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:4, 0:5] = True  # 20 pixels
    b[2:6, 0:5] = True  # 20 pixels, 10 shared
    assert dice(a, b) == pytest.approx(2 * 10 / 40)
    assert dice(a, a) == 1.0
    assert dice(a, np.zeros_like(a)) == 0.0
    assert math.isnan(dice(np.zeros_like(a), np.zeros_like(a)))


def test_per_label_and_epicardium_on_a_constructed_pair() -> None:
    target = np.zeros((1, 8, 8), np.uint8)
    target[0, 0:4, 0:4] = 1  # LV: 16
    target[0, 0:4, 4:6] = 2  # MYO: 8
    target[0, 5:8, 0:4] = 3  # LA: 12
    pred = target.copy()
    pred[0, 0:4, 3] = 2  # 4 LV pixels read as MYO: LV 12/16, MYO 12 predicted, 8 true
    pred[0, 5, 0:4] = 0  # 4 LA pixels missed: LA 8 of 12
    got = dice_per_image(pred, target)
    assert got["lv"][0] == pytest.approx(2 * 12 / (12 + 16))
    assert got["myo"][0] == pytest.approx(2 * 8 / (12 + 8))
    assert got["la"][0] == pytest.approx(2 * 8 / (8 + 12))
    assert got["epi"][0] == 1.0  # LV+MYO together is unchanged by the LV/MYO confusion


def test_mean_skips_images_where_a_structure_is_absent_from_both() -> None:
    target = np.zeros((2, 4, 4), np.uint8)
    target[0, :2] = 3  # LA only in image 0
    pred = target.copy()
    pred[0, 0] = 0  # half the LA missed: Dice 2*4/(4+8)
    means = mean_dice(pred, target, {"la": (3,), "lv": (1,)})
    assert means["la"] == pytest.approx(8 / 12)  # image 1 (no LA anywhere) is not a free 1.0
    assert means["lv"] is None


def test_structures_follow_the_kept_labels() -> None:
    assert list(structures_for((1, 2, 3))) == ["lv", "myo", "la", "epi"]
    assert list(structures_for((1, 3))) == ["lv", "la"]  # no epicardium without the wall


def test_shape_mismatch_is_a_user_error() -> None:
    with pytest.raises(InputMismatch, match=r"label maps \| pred \(1, 4, 4\), target \(4, 4\)"):
        dice_per_image(np.zeros((1, 4, 4)), np.zeros((4, 4)))
