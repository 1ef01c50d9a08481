"""The evaluation protocol's settings and their defaults, torch-free.

Kept apart from the protocol (which imports torch) so `echogen-trt evaluate --help` can show
the defaults without importing torch; `protocol` and `segment` re-export these names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from echogen_trt.errors import ConfigError

EVAL_SPLITS = ("test", "valid")
EVAL_PHASES = ("ED", "ES", "seq")  # "seq": the labelled half-sequence frames between ED and ES


@dataclass(frozen=True)
class SegmenterSettings:
    """How the judge is built and trained; part of its cache key.

    The defaults train on the demo's data (96 phantom frames at 128x128) in about 35 s on two CPU
    cores and segment phantoms at Dice 0.93-0.98; 100 iterations under-fit the LA (README).
    """

    width: int = 8
    depth: int = 4
    iters: int = 200
    batch_size: int = 8
    lr: float = 3e-3
    augment: bool = True
    blur: float = 1.5  # largest Gaussian blur sigma, in pixels at 128 px (scaled with the size)
    shift: float = 0.04  # largest translation, as a share of the frame size

    def check(self) -> SegmenterSettings:
        if (
            min(self.width, self.depth, self.iters, self.batch_size) < 1
            or not self.lr > 0
            or min(self.blur, self.shift) < 0
        ):
            raise ConfigError(
                f"segmenter settings | {self.to_dict()}. Expected positive width, depth, iters, "
                "batch_size and lr, and blur, shift >= 0."
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalConfig:
    """Every knob of the protocol; the defaults are the documented protocol."""

    split: str = "test"  # the frames judged; the segmenters always learn from "train"
    view: str = "4CH"
    phases: tuple[str, ...] = EVAL_PHASES  # "seq" adds nothing where the tree has no sequences
    split_source: str = "auto"
    seed: int = 0
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)
    synthetic: bool = True  # also run the synthetic-only downstream protocol
    kid_subsets: int = 100
    batch_size: int = 8  # masks per generator call
    device: str = "auto"  # segmenter device: "auto" (CUDA when there), "cpu", "cuda", "cuda:N"
    use_cache: bool = True
    n_examples: int = 4  # test frames shown in the report's picture
    judges: int = 3  # judge seeds (seed, seed + 1, ...): Dice is their mean, with their spread
    judge_min_dice: float = 0.7  # the quality gate: real-frame Dice of every structure
    kid_null_draws: int = 50  # real-vs-real KID draws of the null

    def check(self) -> EvalConfig:
        if self.split not in EVAL_SPLITS:
            raise ConfigError(
                f"--split | {self.split!r}. Expected one of {list(EVAL_SPLITS)} (the segmenters "
                "learn from 'train', so judging on it would flatter every number)."
            )
        bad = [p for p in self.phases if p not in EVAL_PHASES]
        if not self.phases or bad:
            raise ConfigError(
                f"phases | {list(self.phases)}. Expected a non-empty subset of {EVAL_PHASES}."
            )
        if min(self.kid_subsets, self.batch_size, self.judges, self.kid_null_draws) < 1:
            raise ConfigError(
                f"kid_subsets / batch_size / judges / kid_null_draws | {self.kid_subsets} / "
                f"{self.batch_size} / {self.judges} / {self.kid_null_draws}. Expected >= 1."
            )
        if not 0.0 <= self.judge_min_dice < 1.0:
            raise ConfigError(f"judge_min_dice | {self.judge_min_dice}. Expected 0 <= x < 1.")
        self.segmenter.check()
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phases"] = list(self.phases)
        return data
