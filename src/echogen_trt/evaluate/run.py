"""`run_evaluation`: the protocol on a model file (served like `generate`), with its report.

The protocol (evaluate/protocol.py) judges any masks -> frames function; this module serves a model
file through the runtime's MaskToEcho, adds the model's facts to the summary and writes the report
(evaluate/report.py), so that neither of those two imports the other's caller.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from echogen_trt.evaluate import cache
from echogen_trt.evaluate.protocol import EvalConfig, evaluate_generator
from echogen_trt.evaluate.report import REPORT_FILES, json_text, write_report
from echogen_trt.fileio import check_outputs, sha256_file, write_text_atomic
from echogen_trt.option_values import check_seed
from echogen_trt.runtime.mask_to_echo import MaskToEcho
from echogen_trt.runtime.model_files import model_files


def eval_config(
    *,
    seg_iters: int | None = None,
    seg_width: int | None = None,
    synthetic: bool = True,
    use_cache: bool = True,
    device: str | None = None,
    judges: int | None = None,
    judge_min_dice: float | None = None,
) -> EvalConfig:
    """The protocol's EvalConfig with the command line's overrides (None: the default)."""
    cfg = EvalConfig()
    seg = cfg.segmenter
    seg = replace(seg, iters=seg_iters or seg.iters, width=seg_width or seg.width)
    return replace(
        cfg, segmenter=seg, synthetic=synthetic, use_cache=use_cache, device=device or cfg.device,
        judges=judges or cfg.judges,
        judge_min_dice=cfg.judge_min_dice if judge_min_dice is None else judge_min_dice,
    )  # fmt: skip


def run_evaluation(
    data_root: str | Path,
    model_path: str | Path,
    *,
    split: str | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    backend: str | None = None,
    cache_dir: str | Path | None = None,
    config: EvalConfig | None = None,
    json_out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a model file (.engine, .onnx or .pt, served like `generate`) on a CAMUS tree.

    `size`: frame size (H, W) of the evaluation (default: the model's); `split`/`seed` override
    `config`'s. With `out_dir`, writes evaluation.json, report.md and examples.png there; with
    `json_out`, the summary as JSON to that file. Returns the summary dict (JSON-ready).
    """
    _check_outputs(data_root, model_path, out_dir, json_out)
    if seed is not None:
        check_seed(seed)
    cfg = config or EvalConfig()
    cfg = replace(
        cfg, split=split if split is not None else cfg.split,
        seed=seed if seed is not None else cfg.seed,
    )  # fmt: skip
    with MaskToEcho(model_path, backend, batch_size=cfg.batch_size) as gen:
        meta = gen.meta
        result = evaluate_generator(
            gen.generate, data_root, size=size or meta.input_size, kept=tuple(meta.kept_labels),
            config=cfg, cache_dir=cache_dir if cache_dir is not None else cache.default_cache_dir(),
            model_key=sha256_file(model_path), progress=progress,
        )  # fmt: skip
        backend_name = type(gen.backend).__name__
    result.summary["model"] = {
        "path": str(model_path), "backend": backend_name, "experiment": meta.experiment,
        "input_size": list(meta.input_size), "precision": meta.precision, "step": meta.step,
    }  # fmt: skip
    if out_dir is not None:
        result.summary["report"] = str(write_report(Path(out_dir), result))
    if json_out is not None:
        write_text_atomic(Path(json_out), json_text(result.summary) + "\n")
    return result.summary


def _check_outputs(
    data_root: str | Path,
    model: str | Path,
    out_dir: str | Path | None,
    json_out: str | Path | None,
) -> None:
    """Before any work: --json and the report's files are neither the model (nor its siblings)
    nor inside the dataset (`evaluate --report DATA` would write into the tree)."""
    report = {} if out_dir is None else {f"--report's {n}": Path(out_dir) / n for n in REPORT_FILES}
    check_outputs(
        {"--json": json_out, **report},
        inputs={**{f"{k} {v}": v for k, v in model_files(model).items()}, "dataset": data_root},
        folders={"--report": out_dir},
    )
