"""The segmentation-consistency gate of a quantized model: how much Dice it loses against FP32.

The evaluate protocol's U-Net judge (trained on the tree's real training frames, cached) segments
the test frames that the FP32 model and the candidate generate from the same masks; the Dice
against those masks may drop by at most 0.01 per structure. Used by `export --precision int8`
(export.int8 takes it as an extra gate, so export does not import evaluate).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from echogen_trt.evaluate import cache
from echogen_trt.evaluate.protocol import EvalConfig, evaluate_generator
from echogen_trt.export.int8 import Gate, Int8Result, export_int8
from echogen_trt.export.verify import Check

log = logging.getLogger(__name__)

MAX_DICE_DROP = 0.01
NAME = "Dice drop vs fp32 (segmentation consistency)"


def consistency_dice(
    model: Path, data_root: Path, config: EvalConfig, cache_dir: Path | None
) -> dict[str, float]:
    """Per-structure segmentation-consistency Dice of `model` (backend from its suffix)."""
    from echogen_trt.runtime.mask_to_echo import MaskToEcho

    with MaskToEcho(model, batch_size=config.batch_size) as gen:
        meta = gen.meta
        result = evaluate_generator(
            gen.generate, data_root, size=meta.input_size, kept=tuple(meta.kept_labels),
            config=config, cache_dir=cache_dir,
        )  # fmt: skip
    dice: dict[str, float] = result.summary["dice"]["consistency"]
    return dice


def dice_drop_gate(
    data_root: str | os.PathLike[str],
    *,
    max_drop: float = MAX_DICE_DROP,
    config: EvalConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Gate:
    """A gate (fp32 model, candidate) -> Check: the largest per-structure Dice drop <= max_drop.
    The judge is trained once and cached (`cache_dir`, default the evaluate cache)."""
    cfg = replace(config or EvalConfig(), synthetic=False)
    cdir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()

    def gate(fp32: Path, candidate: Path) -> Check:
        ref = consistency_dice(fp32, Path(data_root), cfg, cdir)
        got = consistency_dice(candidate, Path(data_root), cfg, cdir)
        drops = {k: ref[k] - got[k] for k in ref}
        worst = max(drops, key=lambda k: drops[k])
        log.info("Dice fp32 %s, candidate %s", ref, got)
        return Check(
            NAME,
            f"{drops[worst]:.4f} ({worst}: {ref[worst]:.3f} -> {got[worst]:.3f})",
            f"<= {max_drop:g}",
            ok=drops[worst] <= max_drop,
            number=drops[worst],
        )

    return gate


def export_int8_gated(
    ckpt_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    calibrate: str | os.PathLike[str],
    dice_gate: bool = True,
    **options: Any,
) -> Int8Result:
    """`export.int8.export_int8` with both of its gates: the PSNR gate and, unless
    dice_gate=False, the segmentation-consistency Dice gate on the `calibrate` tree. What
    `export --precision int8` runs; a library caller gets the same check by default."""
    gates = [dice_drop_gate(calibrate)] if dice_gate else []
    return export_int8(ckpt_path, out_path, calibrate=calibrate, gates=gates, **options)
