"""`echogen-trt generate`: masks to echo frames with an engine, an ONNX file or a checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from echogen_trt.errors import ConfigError
from echogen_trt.fileio import show_path
from echogen_trt.option_values import default_note, default_of
from echogen_trt.runtime.default_model import RUNS_DIR, find_default_model, show_relative
from echogen_trt.runtime.job_plan import FORMATS, K8S_COUNT_VAR, parse_shard, shard_from_env
from echogen_trt.runtime.pipeline import SIZES, GenerateSummary, run_generate
from echogen_trt.runtime.registry import AUTO, describe_suffixes, names


@click.command("generate")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder; frames mirror the inputs' relative paths.",
)
@click.option(
    "--model",
    "-m",
    type=click.Path(dir_okay=False),
    help=f"{describe_suffixes().capitalize()}. Default: the one obvious model in . or "
    f"{RUNS_DIR}/*/.",
)
@click.option(
    "--backend",
    type=click.Choice([AUTO, *names()]),
    help="Default: from the model's suffix. auto: for an .onnx file the faster of ONNX Runtime "
    "and OpenVINO on this machine, measured once and cached (`doctor --model` shows it).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help=f"Masks per inference call. {default_note(default_of(run_generate, 'batch_size'))}",
)
@click.option("--recursive", "-r", is_flag=True, help="Descend into sub-folders of input folders.")
@click.option(
    "--size",
    type=click.Choice(SIZES),
    help="Frames at the model's resolution or each mask's own size. "
    f"{default_note(default_of(run_generate, 'size'))}",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    help=f"Frame format. {default_note(default_of(run_generate, 'fmt'))}",
)
@click.option(
    "--overlay",
    is_flag=True,
    help="Also write NAME_overlay.png: mask | frame | contours, for checking.",
)
@click.option("--skip-existing", is_flag=True, help="Keep frames already in --out (resume a run).")
@click.option(
    "--replace-model",
    is_flag=True,
    help="Write into an --out that another model wrote (its manifest); its frames are replaced.",
)
@click.option(
    "--shard",
    metavar="I/N|auto",
    help="Do only shard I of N (0-based), for parallel jobs; auto: from a Slurm job array or a "
    "Kubernetes indexed Job.",
)
@click.option(
    "--shard-count-var",
    metavar="NAME",
    help=f"With --shard auto in a Kubernetes indexed Job: the variable holding the Job's "
    f"completions [{K8S_COUNT_VAR}].",
)
@click.option("--workers", type=click.IntRange(min=1), help="Reader and writer threads each.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    help="Refuse masks larger than this, from the file header. "
    f"{default_note(default_of(run_generate, 'max_pixels'))}",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def generate(
    ctx: click.Context, inputs: tuple[str, ...], out: str, model: str | None, as_json: bool,
    shard: str | None, shard_count_var: str | None, **options: Any,
) -> None:  # fmt: skip
    """Generate one echo frame per mask in INPUTS (folders, glob patterns or files).

    Masks: PNG/BMP/TIFF, .npy or CAMUS *_gt.mhd / *_gt.nii.gz (the [medical] extra) holding
    labels 0..3 (or 0/85/170/255, or 0/21845/43690/65535 in 16 bit). Bad inputs are reported
    and skipped; the exit status is 1 if any failed.

    \b
    Example:
      echogen-trt generate masks/ --out frames/ --model runs/exp/model.onnx
    """
    if model is None:
        found = find_default_model(Path.cwd())
        click.echo(f"using model {show_relative(found, Path.cwd())}", err=True)
        model = str(found)
    kwargs = {k: v for k, v in options.items() if v not in (None, False)}
    if shard_count_var and shard != "auto":
        raise ConfigError(
            f"--shard-count-var {shard_count_var} | given without --shard auto. Expected both. "
            "Hint: add --shard auto, or drop --shard-count-var."
        )
    if shard == "auto":
        index, count, where = shard_from_env(os.environ, shard_count_var)
        click.echo(f"shard {index}/{count} ({where})", err=True)
        shard = f"{index}/{count}"
    summary = run_generate(
        list(inputs),
        out,
        model=model,
        shard=parse_shard(shard) if shard else None,
        progress=not as_json,
        **kwargs,
    )
    click.echo(json.dumps(summary.to_dict(), indent=2) if as_json else format_summary(summary))
    if summary.failed:
        ctx.exit(1)


def format_summary(s: GenerateSummary) -> str:
    """The human summary: counts, speed, then each failure on its own line."""
    skipped = f", {s.skipped_existing} already there" if s.skipped_existing else ""
    lines = [
        f"wrote {s.written} of {s.total} frames to {s.out_dir}{skipped}, {len(s.failed)} failed"
    ]
    if s.ms_per_frame is not None:
        compute = f"{s.compute_ms_per_frame:.2f}" if s.compute_ms_per_frame is not None else "-"
        where = f" ({s.detail})" if s.detail else ""
        lines.append(
            f"{s.backend}{where}: {s.ms_per_frame:.2f} ms/frame end to end, {compute} ms/frame "
            f"compute, model loaded in {s.load_s:.2f} s"
        )
    if s.stopped:
        lines.append(f"stopped early: {s.stopped}")
    if s.failed:
        lines.append("failed:")
        for path, reason in s.failed:  # one line each, whatever the file name holds
            lines.append(f"  {show_path(path)}: {' '.join(reason.splitlines())}")
    return "\n".join(lines)
