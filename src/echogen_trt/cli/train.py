"""`echogen-trt train`: the reference recipe on a CAMUS tree, resumable.

A thin layer: flags override a preset (--config) which overrides the library defaults in
`train.config.TrainConfig` (on --resume the run's own config.json sits between the preset and the
flags: `train.config.run_config`); `train.loop.train_for_report` does the work. torch is imported
only when the command runs, so `--help` stays fast.
"""

from __future__ import annotations

import json
from typing import Any

import click

from echogen_trt.artifacts.labels import EXPERIMENTS
from echogen_trt.train.config import (
    AMP_MODES,
    DECODER_ACTS,
    IMAGE_INTERPS,
    OUTPUT_BIASES,
    TRAIN_PHASES,
    UPSAMPLES,
    run_config,
)


@click.command("train")
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="CAMUS root (either layout). [default: data/phantom]",
)
@click.option(
    "--experiment", type=click.Choice(list(EXPERIMENTS)), help="Labels kept as the condition."
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run folder. [default: runs/<experiment>]"
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="JSON preset, e.g. configs/ventricle.json.",
)
@click.option(
    "--iters",
    type=int,
    help="Total iterations (a resumed run continues up to this). [default: 100000]",
)
@click.option(
    "--max-seconds", type=click.FloatRange(min=0.0, min_open=True),
    help="Also stop on the clock after this many seconds (checked every iteration; the final "
    "step is validated and saved).",
)  # fmt: skip
@click.option(
    "--phase", type=click.Choice(TRAIN_PHASES),
    help="Frames trained on: ED (the reference), ES, or both. [default: ED]",
)  # fmt: skip
@click.option(
    "--batch-size", type=int, help="Pairs per iteration, sampled with replacement. [default: 8]"
)
@click.option("--lr-g", type=float, help="Generator Adam learning rate. [default: 1.3e-4]")
@click.option("--lr-d", type=float, help="Discriminator Adam learning rate. [default: 1.5e-4]")
@click.option("--width", type=int, help="Base channel width of G and D. [default: 64]")
@click.option("--image-size", type=int, help="Square training size, a power of two. [default: 256]")
@click.option(
    "--skips/--no-skips", default=None, help="U-Net skip connections (the reference has none)."
)
@click.option(
    "--upsample", type=click.Choice(UPSAMPLES),
    help="'transpose' (the reference) or 'resize' (resize-then-convolve, against the faint dot "
    "grid). [default: transpose]",
)  # fmt: skip
@click.option(
    "--decoder-act", type=click.Choice(DECODER_ACTS), help="'relu' (code) or 'leaky' (paper)."
)
@click.option(
    "--output-bias",
    type=click.Choice(OUTPUT_BIASES),
    help="Initial bias of G's output conv: 'target_mean' (prevents the saturated apex blob) or "
    "'zero' (the paper's reference recipe, bit for bit). [default: target_mean]",
)
@click.option(
    "--image-interp",
    type=click.Choice(IMAGE_INTERPS),
    help="Image resize filter. [default: nearest]",
)
@click.option(
    "--split-source", help="auto, reference, official, or a split file/folder. [default: auto]"
)
@click.option("--device", help="auto, cpu, cuda or cuda:N. [default: auto]")
@click.option(
    "--amp", type=click.Choice(AMP_MODES), help="Mixed precision (fp16 needs CUDA). [default: off]"
)
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory format.")
@click.option("--deterministic/--no-deterministic", default=None, help="Deterministic algorithms.")
@click.option("--seed", type=int, help="Seed for init and batch sampling. [default: 0]")
@click.option("--ckpt-every", type=int, help="Checkpoint interval in iterations. [default: 5000]")
@click.option(
    "--keep-last", type=int, help="step_*.pt files kept besides last.pt and best.pt. [default: 3]"
)
@click.option("--val-every", type=int, help="Validation interval; 0 turns it off. [default: 1000]")
@click.option("--log-every", type=int, help="Logging interval in iterations. [default: 100]")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out (or the preset's out) from its last.pt, with the settings "
    "of its config.json; flags given here override them, except the architecture.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train(config_path: str | None, resume: bool, as_json: bool, **options: Any) -> None:
    """Train the Patch-cGAN generator on mask/frame pairs of a CAMUS tree.

    \b
    Example:
      echogen-trt synth --out data/phantom
      echogen-trt train --data data/phantom --experiment ventricle --out runs/ventricle \\
          --config configs/ventricle.json
      echogen-trt train --out runs/ventricle --resume      # continue after an interruption
      echogen-trt train --config configs/ventricle.json --resume   # same run (its "out")

    Writes config.json, metrics.jsonl, step_*.pt / last.pt / best.pt and val/*.png into --out.
    """
    from echogen_trt.train.loop import train_for_report

    result = train_for_report(run_config(config_path, options, resume=resume), resume=resume)
    if result is None:
        return  # under torchrun only rank 0 reports (it alone validates and saves)
    summary = result.to_dict()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"trained {summary['start_step']} -> {summary['step']} steps in {summary['out']} "
        f"({summary['it_per_s']:.2f} it/s on {summary['device']})"
    )
    if summary["val"]:
        val = summary["val"]
        click.echo(
            f"validation (in fan): L1 {val['l1']:.4f}  PSNR {val['psnr']:.2f} dB  "
            f"SSIM {val['ssim']:.3f}"
        )
    click.echo(f"last: {summary['last_checkpoint']}")
    if summary["best_checkpoint"]:
        click.echo(f"best: {summary['best_checkpoint']} (val L1 {summary['best_val_l1']:.4f})")
