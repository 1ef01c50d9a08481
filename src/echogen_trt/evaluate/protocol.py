"""The evaluation protocol: how faithful a generator's frames are, measured the way the field does,
each score beside its floor, its ceiling and its noise (issue 24).

1. Paired image metrics inside the hole-filled sector (L1, PSNR, SSIM; the cavities count, see
   evaluate/ladder.py) and the share of saturated background pixels outside it, generated test
   frame against the real one of the same mask; the same for the grey-sector floor.
2. Segmentation consistency: U-Nets ("judges", `judges` seeds) trained on the tree's real training
   frames segment the generated test frames; Dice, HD95 and mean absolute distance (mm) against
   the masks they were generated from. The same judges on the real test frames give the ceiling,
   on a mask-agnostic grey sector the floor; `normalised` is (score - floor) / (ceiling - floor).
   Noise: the standard error over frames and the spread over judges. Reported for all frames and
   per phase (ED, ES, the labelled half-sequence frames "seq"). A judge whose real-frame Dice is
   below `judge_min_dice` for a structure is retrained once with another seed, then refused.
3. Synthetic-only downstream Dice (Stojanovski et al. 2023): judges trained only on frames
   generated from the training masks, tested on the real test frames (mean +- std over seeds).
4. KID between real and generated test frames in the first judge's encoder features, with its
   real-vs-real null of the same size (real test frames against as many real training frames):
   the null's p95, the value's z and p. Below KID_MIN_FRAMES frames it is marked as not enough.

`evaluate_generator` takes any masks -> frames function (the seam the tests use);
`evaluate.run.run_evaluation` serves a model file through it and writes the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from echogen_trt.artifacts.labels import DEFAULT_EXPERIMENT, select_labels
from echogen_trt.data.dataset import load_pairs
from echogen_trt.data.splits import check_disjoint
from echogen_trt.errors import InputMismatch, OutputError, TrainingError
from echogen_trt.evaluate import cache
from echogen_trt.evaluate.config import EVAL_PHASES as EVAL_PHASES
from echogen_trt.evaluate.config import EVAL_SPLITS as EVAL_SPLITS
from echogen_trt.evaluate.config import EvalConfig as EvalConfig
from echogen_trt.evaluate.dice import dice_per_image, structures_for
from echogen_trt.evaluate.distance import mean_distances
from echogen_trt.evaluate.kid import KID_MIN_FRAMES, default_subset_size, kid, kid_null, null_test
from echogen_trt.evaluate.ladder import grey_sector, sector, sector_level
from echogen_trt.evaluate.segment import (
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
RETRY_SEED = 1000  # a judge that fails the gate is retrained once with seed + RETRY_SEED


@dataclass
class FrameSet:
    """Real frames of one split, all phases: masks[i] (all labels) belongs to images[i]."""

    masks: np.ndarray  # uint8 (N, H, W)
    images: np.ndarray  # float32 (N, H, W) in [0, 1]
    ids: list[str]  # "patient0001 ED"
    phases: list[str] = field(default_factory=list)  # "ED", "ES" or "seq" per frame
    patients: list[str] = field(default_factory=list)
    spacings: np.ndarray = field(default_factory=lambda: np.ones((0, 2)))  # (N, 2) mm/pixel


@dataclass
class EvalResult:
    """The JSON-ready summary, the arrays the report's picture shows, and per-frame Dice."""

    summary: dict[str, Any]
    examples: dict[str, np.ndarray]  # masks, fake, real, seg_fake, seg_real for a few test frames
    per_frame: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # mean over judges


def load_frames(
    root: Path, split: str, cfg: EvalConfig, size: tuple[int, int], progress: bool
) -> FrameSet:
    """One split's frames for every phase in `cfg.phases`, with all labels kept."""
    masks, images, ids, phases, patients, spacings = [], [], [], [], [], []
    for phase in cfg.phases:
        pairs = load_pairs(
            root, experiment=DEFAULT_EXPERIMENT, split=split, view=cfg.view, phase=phase,
            size=size, split_source=cfg.split_source, progress=progress,
        )  # fmt: skip
        if not len(pairs):
            continue  # no labelled sequences in this tree
        masks.append(pairs.masks)
        images.append(pairs.images)
        ids += [f"{p} {name}" for p, name in zip(pairs.patients, pairs.phases, strict=True)]
        phases += [phase] * len(pairs)
        patients += pairs.patients
        spacings.append(pairs.spacings if pairs.spacings is not None else np.ones((len(pairs), 2)))
    return FrameSet(
        np.concatenate(masks), np.concatenate(images), ids, phases, patients,
        np.concatenate(spacings),
    )  # fmt: skip


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
    cache_dir: Path | None, progress: bool, seed: int | None = None,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The `kind` segmenter of `seed` (default cfg.seed) from the cache when its key matches, else
    trained (and cached)."""
    seed = cfg.seed if seed is None else seed
    key = cache.cache_key(
        {**key_parts, "kind": kind, "settings": cfg.segmenter.to_dict(), "seed": seed}
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
            images, masks, cfg.segmenter, seed=seed, device=device, progress=progress,
            desc=f"train {kind} segmenter (seed {seed})",
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
        **info, "cache": status, "path": str(path) if path else None, "key": key, "seed": seed,
        "params": count_params(model), "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return model, info


def _mean(values: np.ndarray) -> float | None:
    seen = values[~np.isnan(values)]
    return float(seen.mean()) if seen.size else None


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _se(values: np.ndarray) -> float | None:
    seen = values[~np.isnan(values)]
    return float(seen.std(ddof=1) / np.sqrt(seen.size)) if seen.size > 1 else None


def gated_judge(
    train: FrameSet, test: FrameSet, cfg: EvalConfig, key: dict[str, Any], cdir: Path | None,
    structures: dict[str, tuple[int, ...]], seed: int, progress: bool,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """A real-trained judge that reads the real test frames at Dice >= cfg.judge_min_dice for every
    structure: seed `seed`, else once more with seed + RETRY_SEED; TrainingError otherwise."""
    failures = []
    for attempt in (seed, seed + RETRY_SEED):
        judge, info = obtain_segmenter(
            "real", train.images, train.masks, cfg, key, cdir, progress, seed=attempt
        )
        ceiling = dice_per_image(predict_labels(judge, test.images), test.masks, structures)
        weak = {k: m for k, v in ceiling.items() if (m := _mean(v)) is not None and
                m < cfg.judge_min_dice}  # fmt: skip
        if not weak:
            return judge, {**info, "retried": attempt != seed}
        failures.append(f"seed {attempt}: " + ", ".join(f"{k} {v:.3f}" for k, v in weak.items()))
        log.warning("judge of seed %d fails the gate (%s); retraining", attempt, failures[-1])
    raise TrainingError(
        f"judge | real-frame Dice below {cfg.judge_min_dice} ({'; '.join(failures)}): a judge "
        "that cannot read real frames says nothing about generated ones. Expected every "
        "structure >= the gate. Hint: more segmenter iterations (--seg-iters), a larger tree, "
        "or a lower judge_min_dice for a quick look."
    )


def _kid(judge: Any, test: FrameSet, train: FrameSet, fake: np.ndarray, cfg: EvalConfig) -> dict:
    """KID of generated vs real test frames with its real-vs-real null of the same size."""
    f_real, f_fake = encoder_features(judge, test.images), encoder_features(judge, fake)
    mean, std = kid(f_real, f_fake, n_subsets=cfg.kid_subsets, seed=cfg.seed)
    null = kid_null(
        f_real, encoder_features(judge, train.images), draws=cfg.kid_null_draws,
        n_subsets=cfg.kid_subsets, seed=cfg.seed,
    )  # fmt: skip
    return {
        "mean": mean, "std": std, "subsets": cfg.kid_subsets,
        "subset_size": default_subset_size(len(f_real), len(f_fake)),
        "features": f"segmenter encoder, {f_real.shape[1]} dims", "n_frames": len(f_real),
        "enough": len(f_real) >= KID_MIN_FRAMES, **null_test(mean, null),
    }  # fmt: skip


def _summarise(
    per_judge: list[dict[str, dict[str, np.ndarray]]], phases: list[str]
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Dice tables from per-judge, per-frame Dice: means, noise, normalised score, by phase."""
    kinds = list(per_judge[0])
    per_frame = {
        k: {s: np.nanmean(np.stack([j[k][s] for j in per_judge]), axis=0)
            for s in per_judge[0][k]}
        for k in kinds
    }  # fmt: skip
    dice: dict[str, dict[str, float | None]] = {
        k: {s: _mean(v) for s, v in per_frame[k].items()} for k in kinds
    }
    norm: dict[str, float | None] = {}
    for s, value in dice["consistency"].items():
        lo, hi = dice["floor"][s], dice["ceiling"][s]
        ok = value is not None and lo is not None and hi is not None and hi - lo > 1e-6
        norm[s] = (value - lo) / (hi - lo) if ok else None  # type: ignore[operator]
    noise = {
        "se": {k: {s: _se(v) for s, v in per_frame[k].items()} for k in kinds},
        "judge_std": {
            k: {s: float(np.nanstd([_nan(_mean(j[k][s])) for j in per_judge]))
                for s in per_frame[k]}
            for k in kinds
        },
    }  # fmt: skip
    ph = np.array(phases)
    by_phase = {
        p: {k: {s: _mean(v[ph == p]) for s, v in per_frame[k].items()}
            for k in ("ceiling", "consistency")}
        for p in dict.fromkeys(phases)
    }  # fmt: skip
    table = {"ceiling": dice["ceiling"], "consistency": dice["consistency"],
             "floor": dice["floor"], "normalised": norm}  # fmt: skip
    return {"dice": table, "dice_noise": noise, "dice_by_phase": by_phase}, per_frame


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
    region = sector(test.images)
    floor = grey_sector(test.images, sector_level(train.images))
    paired = {
        **fan_metrics(fake, test.images, mask=region),
        "region": "hole-filled sector",
        "outside_fan_saturation": outside_fan_saturation(fake, test.images, mask=region),
    }
    paired_floor = fan_metrics(floor, test.images, mask=region)  # fmt: skip
    lap("generate_and_paired")
    base_key = {
        "tree": cache.tree_fingerprint(root, skip=cdir), "view": cfg.view,
        "phases": list(cfg.phases), "split_source": cfg.split_source, "size": list(size),
    }  # fmt: skip
    structures = structures_for(kept)
    per_judge, judges_info, distances = [], [], []
    for j in range(cfg.judges):
        judge, info = gated_judge(
            train, test, cfg, base_key, cdir, structures, cfg.seed + j, progress
        )
        seg_real, seg_fake = predict_labels(judge, test.images), predict_labels(judge, fake)
        per_judge.append({
            "ceiling": dice_per_image(seg_real, test.masks, structures),
            "consistency": dice_per_image(seg_fake, test.masks, structures),
            "floor": dice_per_image(predict_labels(judge, floor), test.masks, structures),
        })  # fmt: skip
        distances.append({
            "ceiling": mean_distances(seg_real, test.masks, test.spacings, structures),
            "consistency": mean_distances(seg_fake, test.masks, test.spacings, structures),
        })  # fmt: skip
        judges_info.append(info)
        if j == 0:
            first, examples_seg = judge, (seg_fake, seg_real)
    tables, per_frame = _summarise(per_judge, test.phases)
    kid_result = _kid(first, test, train, fake, cfg)
    lap("segmenter_dice_kid")
    syn_info = None
    if cfg.synthetic:
        fake_train = generate_frames(
            generate, train.masks, cfg.batch_size, progress, "generate train"
        )
        syn_masks = select_labels(train.masks, kept)
        syn_key = {**base_key, "model": model_key}
        syn_cache = cdir if model_key is not None else None
        syn_dice, syn_info = [], []
        for j in range(cfg.judges):
            syn, info = obtain_segmenter(
                "synthetic", fake_train, syn_masks, cfg, syn_key, syn_cache, progress,
                seed=cfg.seed + j,
            )  # fmt: skip
            syn_dice.append(dice_per_image(predict_labels(syn, test.images), test.masks,
                                           structures))  # fmt: skip
            syn_info.append(info)
        means = [{s: _nan(_mean(v)) for s, v in d.items()} for d in syn_dice]
        tables["dice"]["synthetic_only"] = {
            s: _mean(np.array([m[s] for m in means])) for s in structures
        }
        tables["dice_noise"]["judge_std"]["synthetic_only"] = {
            s: float(np.nanstd([m[s] for m in means])) for s in structures
        }
        lap("synthetic_only")
    times["total"] = round(sum(times.values()), 2)
    dist = {
        k: {s: {m: _mean(np.array([_nan(d[k][s][m]) for d in distances]))  # type: ignore[arg-type]
                for m in ("hd95_mm", "mad_mm")} | {"missing": distances[0][k][s]["missing"]}
            for s in structures}
        for k in ("ceiling", "consistency")
    }  # fmt: skip
    summary = {
        "data": str(root), "split": cfg.split, "size": list(size), "kept_labels": list(kept),
        "n_test": len(test.ids), "n_train": len(train.ids),
        "frames": {p: test.phases.count(p) for p in dict.fromkeys(test.phases)},
        "paired": paired, "paired_floor": paired_floor, **tables, "distance": dist,
        "kid": kid_result, "segmenter": judges_info[0], "judges": judges_info,
        "synthetic_segmenter": syn_info[0] if syn_info else None,
        "seconds": times, "config": cfg.to_dict(),
    }  # fmt: skip
    n = min(cfg.n_examples, len(test.ids))
    examples = {
        "masks": test.masks[:n], "fake": fake[:n], "real": test.images[:n],
        "seg_fake": examples_seg[0][:n], "seg_real": examples_seg[1][:n],
    }  # fmt: skip
    return EvalResult(summary, examples, per_frame)


def quick_config(cfg: EvalConfig) -> EvalConfig:
    """`cfg` with one judge and no synthetic-only protocol (gates that only need consistency)."""
    return replace(cfg, judges=1, synthetic=False)
