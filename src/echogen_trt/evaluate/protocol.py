"""The evaluation protocol: how faithful a generator's frames are, measured the way the field does.

1. Paired image metrics inside the fan (L1, PSNR, SSIM) and the share of saturated background
   pixels outside it, generated test frame against the real one of the same mask.
2. Segmentation consistency: a U-Net trained on the tree's real training frames segments the
   generated test frames; Dice against the masks they were generated from. The same U-Net on the
   real test frames is the ceiling.
3. Synthetic-only downstream Dice (Stojanovski et al. 2023): the same U-Net trained only on frames
   generated from the training masks, tested on the real test frames.
4. KID between real and generated test frames in the real-trained U-Net's encoder features.

`evaluate_generator` takes any masks -> frames function (the seam the tests use);
`evaluate.run.run_evaluation` serves a model file through it and writes the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from echogen_trt.artifacts.labels import DEFAULT_EXPERIMENT, select_labels
from echogen_trt.data.dataset import PHASES, load_pairs
from echogen_trt.data.splits import check_disjoint
from echogen_trt.errors import ConfigError, InputMismatch, OutputError
from echogen_trt.evaluate import cache
from echogen_trt.evaluate.dice import mean_dice, structures_for
from echogen_trt.evaluate.kid import default_subset_size, kid
from echogen_trt.evaluate.segment import (
    SegmenterSettings,
    count_params,
    encoder_features,
    load_segmenter,
    predict_labels,
    save_segmenter,
    train_segmenter,
)
from echogen_trt.metrics import fan_metrics, outside_fan_saturation
from echogen_trt.runtime.model_tensors import restore_size

log = logging.getLogger(__name__)

# raw-label masks uint8 (N, H, W) -> frames uint8 (N, h, w); resized to the masks' size if needed
FrameFn = Callable[[np.ndarray], np.ndarray]
EVAL_SPLITS = ("test", "valid")


@dataclass(frozen=True)
class EvalConfig:
    """Every knob of the protocol; the defaults are the documented protocol."""

    split: str = "test"  # the frames judged; the segmenters always learn from "train"
    view: str = "4CH"
    phases: tuple[str, ...] = ("ED", "ES")
    split_source: str = "auto"
    seed: int = 0
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)
    synthetic: bool = True  # also run the synthetic-only downstream protocol
    kid_subsets: int = 100
    batch_size: int = 8  # masks per generator call
    device: str = "auto"  # segmenter device: "auto" (CUDA when there), "cpu", "cuda", "cuda:N"
    use_cache: bool = True
    n_examples: int = 4  # test frames shown in the report's picture

    def check(self) -> EvalConfig:
        if self.split not in EVAL_SPLITS:
            raise ConfigError(
                f"--split | {self.split!r}. Expected one of {list(EVAL_SPLITS)} (the segmenters "
                "learn from 'train', so judging on it would flatter every number)."
            )
        bad = [p for p in self.phases if p not in PHASES]
        if not self.phases or bad:
            raise ConfigError(
                f"phases | {list(self.phases)}. Expected a non-empty subset of {PHASES}."
            )
        if self.kid_subsets < 1 or self.batch_size < 1:
            raise ConfigError(
                f"kid_subsets / batch_size | {self.kid_subsets} / {self.batch_size}. Expected >= 1."
            )
        self.segmenter.check()
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phases"] = list(self.phases)
        return data


@dataclass
class FrameSet:
    """Real frames of one split, all phases: masks[i] (all labels) belongs to images[i]."""

    masks: np.ndarray  # uint8 (N, H, W)
    images: np.ndarray  # float32 (N, H, W) in [0, 1]
    ids: list[str]  # "patient0001 ED"


@dataclass
class EvalResult:
    """The JSON-ready summary, plus the arrays the report's picture shows."""

    summary: dict[str, Any]
    examples: dict[str, np.ndarray]  # masks, fake, real, seg_fake, seg_real for a few test frames


def load_frames(
    root: Path, split: str, cfg: EvalConfig, size: tuple[int, int], progress: bool
) -> FrameSet:
    """One split's frames for every phase in `cfg.phases`, with all labels kept."""
    masks, images, ids = [], [], []
    for phase in cfg.phases:
        pairs = load_pairs(
            root, experiment=DEFAULT_EXPERIMENT, split=split, view=cfg.view, phase=phase,
            size=size, split_source=cfg.split_source, progress=progress,
        )  # fmt: skip
        masks.append(pairs.masks)
        images.append(pairs.images)
        ids += [f"{p} {phase}" for p in pairs.patients]
    return FrameSet(np.concatenate(masks), np.concatenate(images), ids)


def _patients(frames: FrameSet) -> list[str]:
    return sorted({i.split(" ")[0] for i in frames.ids})


def generate_frames(
    generate: FrameFn, masks: np.ndarray, batch: int, progress: bool, desc: str
) -> np.ndarray:
    """float32 (N, H, W) in [0, 1]: `generate` applied in batches, resized to the masks' size."""
    size = masks.shape[1:]
    out = []
    for start in tqdm(
        range(0, len(masks), batch), desc=desc, disable=None if progress else True, leave=False
    ):
        chunk = masks[start : start + batch]
        frames = np.asarray(generate(chunk))
        if frames.dtype != np.uint8 or frames.ndim != 3 or len(frames) != len(chunk):
            raise InputMismatch(
                f"generated frames | {frames.dtype} {frames.shape} for {len(chunk)} masks. "
                "Expected uint8 (N, H, W), one frame per mask."
            )
        out += [restore_size(f, size) for f in frames]
    return np.stack(out).astype(np.float32) / np.float32(255.0)


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when torch sees a GPU, else "cpu"."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def obtain_segmenter(
    kind: str, images: np.ndarray, masks: np.ndarray, cfg: EvalConfig, key_parts: dict[str, Any],
    cache_dir: Path | None, progress: bool,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The `kind` segmenter from the cache when its key matches, else trained (and cached)."""
    key = cache.cache_key(
        {**key_parts, "kind": kind, "settings": cfg.segmenter.to_dict(), "seed": cfg.seed}
    )
    path = cache.segmenter_path(cache_dir, kind, key) if cache_dir is not None else None
    device = resolve_device(cfg.device)
    start = time.perf_counter()
    if path is not None and path.is_file():
        model, info = load_segmenter(path, device)
        log.info("%s segmenter reused from %s", kind, path)
        status = "reused"
    else:
        model = train_segmenter(
            images, masks, cfg.segmenter, seed=cfg.seed, device=device, progress=progress,
            desc=f"train {kind} segmenter",
        )  # fmt: skip
        info = {"n_frames": len(images), "size": list(images.shape[1:])}
        status = "trained" if path is not None else "trained (not cached)"
        if path is not None:
            try:
                save_segmenter(model, cfg.segmenter, path, info)
            except OutputError as err:  # a full disk must not lose the evaluation
                log.warning("%s segmenter not cached: %s", kind, err)
                status = "trained (not cached: the cache could not be written)"
    info = {
        **info, "cache": status, "path": str(path) if path else None, "key": key,
        "params": count_params(model), "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return model, info


def _kid(model: Any, real: np.ndarray, fake: np.ndarray, cfg: EvalConfig) -> dict[str, Any]:
    f_real, f_fake = encoder_features(model, real), encoder_features(model, fake)
    mean, std = kid(f_real, f_fake, n_subsets=cfg.kid_subsets, seed=cfg.seed)
    return {
        "mean": mean, "std": std, "subsets": cfg.kid_subsets,
        "subset_size": default_subset_size(len(f_real), len(f_fake)),
        "features": f"segmenter encoder, {f_real.shape[1]} dims",
    }  # fmt: skip


def evaluate_generator(
    generate: FrameFn,
    data_root: str | Path,
    *,
    size: tuple[int, int],
    kept: tuple[int, ...],
    config: EvalConfig | None = None,
    cache_dir: str | Path | None = None,
    model_key: str | None = None,
    progress: bool = False,
) -> EvalResult:
    """Run the protocol on `generate` (masks -> frames) at frame size `size` (H, W).

    `kept`: the labels the generator is conditioned on (Dice is reported for those structures).
    `cache_dir`: where segmenters are cached (None: no cache). `model_key` identifies the
    generator for the synthetic-only segmenter's cache entry (None: that one is not cached).
    """
    cfg = (config or EvalConfig()).check()
    root, size = Path(data_root), (int(size[0]), int(size[1]))
    cdir = Path(cache_dir) if cache_dir is not None and cfg.use_cache else None
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        times[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    test = load_frames(root, cfg.split, cfg, size, progress)
    train = load_frames(root, "train", cfg, size, progress)
    check_disjoint(("training", _patients(train)), (cfg.split, _patients(test)), f"data {root}")
    lap("load")
    fake = generate_frames(generate, test.masks, cfg.batch_size, progress, f"generate {cfg.split}")
    paired = fan_metrics(fake, test.images)
    paired["outside_fan_saturation"] = outside_fan_saturation(fake, test.images)
    lap("generate_and_paired")
    base_key = {
        "tree": cache.tree_fingerprint(root, skip=cdir), "view": cfg.view,
        "phases": list(cfg.phases), "split_source": cfg.split_source, "size": list(size),
    }  # fmt: skip
    seg, seg_info = obtain_segmenter(
        "real", train.images, train.masks, cfg, base_key, cdir, progress
    )
    structures = structures_for(kept)
    seg_real, seg_fake = predict_labels(seg, test.images), predict_labels(seg, fake)
    dice = {
        "ceiling": mean_dice(seg_real, test.masks, structures),
        "consistency": mean_dice(seg_fake, test.masks, structures),
    }
    kid_result = _kid(seg, test.images, fake, cfg)
    lap("segmenter_dice_kid")
    syn_info = None
    if cfg.synthetic:
        fake_train = generate_frames(
            generate, train.masks, cfg.batch_size, progress, "generate train"
        )
        syn_masks = select_labels(train.masks, kept)
        syn_key = {**base_key, "model": model_key}
        syn_cache = cdir if model_key is not None else None
        syn, syn_info = obtain_segmenter(
            "synthetic", fake_train, syn_masks, cfg, syn_key, syn_cache, progress
        )
        dice["synthetic_only"] = mean_dice(predict_labels(syn, test.images), test.masks, structures)
        lap("synthetic_only")
    times["total"] = round(sum(times.values()), 2)
    summary = {
        "data": str(root), "split": cfg.split, "size": list(size), "kept_labels": list(kept),
        "n_test": len(test.ids), "n_train": len(train.ids), "paired": paired, "dice": dice,
        "kid": kid_result, "segmenter": seg_info, "synthetic_segmenter": syn_info,
        "seconds": times, "config": cfg.to_dict(),
    }  # fmt: skip
    n = min(cfg.n_examples, len(test.ids))
    examples = {
        "masks": test.masks[:n], "fake": fake[:n], "real": test.images[:n],
        "seg_fake": seg_fake[:n], "seg_real": seg_real[:n],
    }  # fmt: skip
    return EvalResult(summary, examples)
