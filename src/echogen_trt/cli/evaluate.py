"""`echogen-trt evaluate`: how faithful a model's frames are, measured the way the field does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from echogen_trt.evaluate.config import EVAL_SPLITS, EvalConfig
from echogen_trt.option_values import default_note
from echogen_trt.runtime.registry import AUTO, describe_suffixes, names


@click.command("evaluate")
@click.option(
    "--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="CAMUS-layout tree (real CAMUS or `echogen-trt synth` phantoms).",
)  # fmt: skip
@click.option(
    "--model", "-m", required=True, type=click.Path(dir_okay=False),
    help=f"{describe_suffixes().capitalize()} (anything `generate` serves).",
)  # fmt: skip
@click.option(
    "--split", type=click.Choice(EVAL_SPLITS),
    help=f"Frames judged.  {default_note(EvalConfig.split)}",
)  # fmt: skip
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the summary as JSON to this file ('-' for stdout).",
)  # fmt: skip
@click.option(
    "--report", type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.md, examples.png and evaluation.json.",
)  # fmt: skip
@click.option("--backend", type=click.Choice([AUTO, *names()]), help="Default: from the suffix.")
@click.option(
    "--seed",
    type=int,
    help=f"Seed of the segmenters and the KID subsets.  {default_note(EvalConfig.seed)}",
)
@click.option(
    "--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
    help="Where trained segmenters are kept.  [default: $ECHOGEN_CACHE or ~/.cache/echogen-trt]",
)  # fmt: skip
@click.option("--no-cache", is_flag=True, help="Train the segmenters anew and keep nothing.")
@click.option(
    "--no-synthetic", is_flag=True,
    help="Skip the synthetic-only downstream protocol (it trains a second segmenter).",
)  # fmt: skip
@click.option("--seg-iters", type=click.IntRange(min=1), help="Segmenter training iterations.")
@click.option("--seg-width", type=click.IntRange(min=1), help="Segmenter base width.")
@click.option(
    "--judges", type=click.IntRange(min=1),
    help="Segmenter seeds; Dice is their mean, reported with their spread.  "
    f"{default_note(EvalConfig.judges)}",
)  # fmt: skip
@click.option(
    "--judge-min-dice", type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Quality gate: a judge reading real frames below this Dice for a structure is retrained "
    f"once, then refused.  {default_note(EvalConfig.judge_min_dice)}",
)  # fmt: skip
@click.option(
    "--device",
    help=f"Segmenter device: auto, cpu, cuda or cuda:N.  {default_note(EvalConfig.device)}",
)
def evaluate(
    data: Path, model: str, json_path: Path | None, report: Path | None, no_cache: bool,
    no_synthetic: bool, seg_iters: int | None, seg_width: int | None, judges: int | None,
    judge_min_dice: float | None, **options: Any,
) -> None:  # fmt: skip
    """Judge MODEL's frames for the masks of a CAMUS tree: paired metrics in the sector, Dice and
    contour distances (HD95, MAD) of U-Nets on generated frames beside their floor (grey sector),
    ceiling (real frames) and noise, synthetic-only downstream Dice, KID with its real-vs-real null.

    \b
    Example:
      echogen-trt evaluate --data demo/data --model demo/models/echogen.onnx --report eval/
    """
    from echogen_trt.evaluate.report import format_table, json_text
    from echogen_trt.evaluate.run import eval_config, run_evaluation

    cfg = eval_config(
        seg_iters=seg_iters, seg_width=seg_width, synthetic=not no_synthetic,
        use_cache=not no_cache, device=options["device"], judges=judges,
        judge_min_dice=judge_min_dice,
    )  # fmt: skip
    to_stdout = json_path is not None and str(json_path) == "-"
    summary = run_evaluation(
        data, model, split=options["split"], seed=options["seed"], out_dir=report,
        progress=not to_stdout, backend=options["backend"], cache_dir=options["cache_dir"],
        config=cfg, json_out=None if to_stdout else json_path,
    )  # fmt: skip
    if to_stdout:
        click.echo(json_text(summary))
        return
    click.echo(format_table(summary))
    if report is not None:
        click.echo(f"report: {summary['report']}")
