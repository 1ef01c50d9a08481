"""The protocol on hand-made generators: one that returns the real frame of each mask (every score
must equal its ceiling) and one that returns a flat grey frame (every score must collapse)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import SIZE, TINY

from echogen_trt.errors import ConfigError, InputMismatch
from echogen_trt.evaluate import protocol
from echogen_trt.evaluate.protocol import EvalConfig, evaluate_generator


def perfect(lookup: dict[bytes, np.ndarray]) -> protocol.FrameFn:
    return lambda masks: np.stack([lookup[m.tobytes()] for m in masks])


def constant(masks: np.ndarray) -> np.ndarray:
    return np.full(masks.shape, 128, np.uint8)


@pytest.fixture(scope="module")
def perfect_result(phantom_tree: Path, real_lookup: dict[bytes, np.ndarray]) -> dict:
    return evaluate_generator(
        perfect(real_lookup), phantom_tree, size=(SIZE, SIZE), kept=(1, 2, 3), config=TINY
    ).summary


@pytest.fixture(scope="module")
def constant_result(phantom_tree: Path) -> dict:
    return evaluate_generator(
        constant, phantom_tree, size=(SIZE, SIZE), kept=(1, 2, 3), config=TINY
    ).summary


def test_a_perfect_generator_scores_the_ceiling(perfect_result: dict) -> None:
    dice, paired = perfect_result["dice"], perfect_result["paired"]
    assert dice["ceiling"]["lv"] > 0.7  # the judge learnt to segment
    assert dice["consistency"] == dice["ceiling"]
    # trained on exactly the real training frames with the same seed: the same judge
    assert dice["synthetic_only"] == dice["ceiling"]
    assert paired["l1"] == 0.0 and math.isinf(paired["psnr"])
    assert paired["ssim"] == pytest.approx(1.0)
    assert paired["outside_fan_saturation"] == 0.0
    assert (
        perfect_result["n_test"] == 4 and perfect_result["n_train"] == 32
    )  # 2+16 patients x ED/ES


def test_a_constant_generator_collapses_dice_and_raises_kid(
    perfect_result: dict, constant_result: dict
) -> None:
    ceiling, const = perfect_result["dice"]["ceiling"], constant_result["dice"]
    assert constant_result["dice"]["ceiling"] == ceiling  # the judge does not depend on G
    for name in ("lv", "la", "epi"):  # the wall is 1-2 pixels at 32x32: its ceiling is ~0
        assert (const["consistency"][name] or 0.0) < ceiling[name] - 0.3
        assert (const["synthetic_only"][name] or 0.0) < ceiling[name] - 0.3
    assert abs(perfect_result["kid"]["mean"]) < 0.05 * constant_result["kid"]["mean"]
    assert constant_result["kid"]["mean"] > 3 * constant_result["kid"]["std"]
    assert constant_result["paired"]["ssim"] < 0.5


def test_labels_the_generator_ignores_are_not_scored(
    phantom_tree: Path, real_lookup: dict[bytes, np.ndarray]
) -> None:
    cfg = EvalConfig(**{**TINY.__dict__, "synthetic": False})
    summary = evaluate_generator(
        perfect(real_lookup), phantom_tree, size=(SIZE, SIZE), kept=(1, 3), config=cfg
    ).summary
    assert list(summary["dice"]) == ["ceiling", "consistency", "floor", "normalised"]
    assert list(summary["dice"]["ceiling"]) == ["lv", "la"]
    assert summary["synthetic_segmenter"] is None


def test_segmenters_are_cached_per_tree_settings_and_model(
    tmp_path: Path, phantom_tree: Path, real_lookup: dict[bytes, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    tree = shutil.copytree(phantom_tree, tmp_path / "tree")
    cache = tmp_path / "cache"

    def run(config: EvalConfig = TINY, key: str = "model-a") -> dict:
        return evaluate_generator(
            perfect(real_lookup), tree, size=(SIZE, SIZE), kept=(1, 2, 3), config=config,
            cache_dir=cache, model_key=key,
        ).summary  # fmt: skip

    first = run()
    assert (first["segmenter"]["cache"], first["synthetic_segmenter"]["cache"]) == ("trained",) * 2
    assert len(list((cache / "segmenters").glob("*.pt"))) == 2
    with monkeypatch.context() as patch:
        patch.setattr(protocol, "train_segmenter", _no_training)
        again = run()
    assert (again["segmenter"]["cache"], again["synthetic_segmenter"]["cache"]) == ("reused",) * 2
    assert again["dice"] == first["dice"]
    other_model = run(key="model-b")
    assert other_model["segmenter"]["cache"] == "reused"
    assert other_model["synthetic_segmenter"]["cache"] == "trained"
    seg = TINY.segmenter
    other = run(
        EvalConfig(**{**TINY.__dict__, "segmenter": type(seg)(**{**seg.to_dict(), "iters": 5})})
    )
    assert other["segmenter"]["cache"] == "trained"
    touched = next(tree.rglob("*_4CH_ED.nii.gz"))
    os.utime(touched, ns=(1, 1))
    assert run()["segmenter"]["cache"] == "trained"


def _no_training(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a cached segmenter was trained again")


def test_a_generator_returning_the_wrong_thing_is_named(phantom_tree: Path) -> None:
    with pytest.raises(InputMismatch, match=r"generated frames \| float64"):
        evaluate_generator(
            lambda m: np.zeros(m.shape), phantom_tree, size=(SIZE, SIZE), kept=(1, 2, 3),
            config=TINY,
        )  # fmt: skip


def test_judging_the_training_split_is_refused(phantom_tree: Path) -> None:
    with pytest.raises(ConfigError, match=r"--split \| 'train'"):
        evaluate_generator(
            constant, phantom_tree, size=(SIZE, SIZE), kept=(1,), config=EvalConfig(split="train")
        )


def test_frames_of_another_size_are_brought_to_the_masks_size() -> None:
    masks = np.zeros((3, 32, 32), np.uint8)
    frames = protocol.generate_frames(
        lambda m: np.full((len(m), 16, 16), 255, np.uint8), masks, 2, False, "t"
    )
    assert frames.shape == (3, 32, 32) and frames.dtype == np.float32
    assert np.all(frames == 1.0)


def test_a_judge_that_cannot_read_real_frames_is_retrained_then_refused(
    phantom_tree: Path, real_lookup: dict[bytes, np.ndarray]
) -> None:
    from echogen_trt.errors import TrainingError

    weak = EvalConfig(**{**TINY.__dict__, "synthetic": False, "judge_min_dice": 0.999})
    with pytest.raises(TrainingError, match=r"judge \| real-frame Dice below 0.999 \(seed 0: .*"
                       r"seed 1000: .*Hint"):  # fmt: skip
        evaluate_generator(
            perfect(real_lookup), phantom_tree, size=(SIZE, SIZE), kept=(1, 2, 3), config=weak
        )
