"""Constants shared by the evaluate tests (imported by name: pytest puts this folder on path)."""

from __future__ import annotations

from echogen_trt.evaluate.protocol import EvalConfig
from echogen_trt.evaluate.segment import SegmenterSettings

SIZE = 32
# blur and shift off: at 32x32 they slow the tiny judge's 150 iterations (test_ladder and
# test_segment cover the augmentation)
TINY_SEG = SegmenterSettings(width=4, depth=3, iters=150, batch_size=8, blur=0.0, shift=0.0)
TINY = EvalConfig(
    segmenter=TINY_SEG,
    kid_subsets=20,
    device="cpu",
    n_examples=2,
    judges=1,
    judge_min_dice=0.0,
    kid_null_draws=10,
)
