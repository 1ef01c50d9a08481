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
from echogen_trt.option_values import default_note
from echogen_trt.train.config import (
    AMP_MODES,
    BEST_CKPT,
    CONFIG_FILE,
    DECODER_ACTS,
    IMAGE_INTERPS,
    LAST_CKPT,
    OUTPUT_BIASES,
    TRAIN_PHASES,
    UPSAMPLES,
    TrainConfig,
    default_out,
    run_config,
)


@click.command("train")
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help=f"CAMUS root (either layout). {default_note(TrainConfig.data)}",
)
@click.option(
    "--experiment", type=click.Choice(list(EXPERIMENTS)), help="Labels kept as the condition."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help=f"Run folder. {default_note(default_out('<experiment>'))}",
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
    help="Total iterations (a resumed run continues up to this). "
    f"{default_note(TrainConfig.iters)}",
)
@click.option(
    "--max-seconds", type=click.FloatRange(min=0.0, min_open=True),
    help="Also stop on the clock after this many seconds (checked every iteration; the final "
    "step is validated and saved).",
)  # fmt: skip
@click.option(
    "--phase", type=click.Choice(TRAIN_PHASES),
    help=f"Frames trained on: ED (the reference), ES, or both. {default_note(TrainConfig.phase)}",
)  # fmt: skip
@click.option(
    "--batch-size",
    type=int,
    help=f"Pairs per iteration, sampled with replacement. {default_note(TrainConfig.batch_size)}",
)
@click.option(
    "--lr-g", type=float, help=f"Generator Adam learning rate. {default_note(TrainConfig.lr_g)}"
)
@click.option(
    "--lr-d", type=float, help=f"Discriminator Adam learning rate. {default_note(TrainConfig.lr_d)}"
)
@click.option(
    "--width", type=int, help=f"Base channel width of G and D. {default_note(TrainConfig.width)}"
)
@click.option(
    "--image-size",
    type=int,
    help=f"Square training size, a power of two. {default_note(TrainConfig.image_size)}",
)
@click.option(
    "--skips/--no-skips", default=None, help="U-Net skip connections (the reference has none)."
)
@click.option(
    "--upsample", type=click.Choice(UPSAMPLES),
    help="'transpose' (the reference) or 'resize' (resize-then-convolve, against the faint dot "
    f"grid). {default_note(TrainConfig.upsample)}",
)  # fmt: skip
@click.option(
    "--decoder-act", type=click.Choice(DECODER_ACTS), help="'relu' (code) or 'leaky' (paper)."
)
@click.option(
    "--output-bias",
    type=click.Choice(OUTPUT_BIASES),
    help="Initial bias of G's output conv: 'target_mean' (prevents the saturated apex blob) or "
    f"'zero' (the paper's reference recipe, bit for bit). {default_note(TrainConfig.output_bias)}",
)
@click.option(
    "--image-interp",
    type=click.Choice(IMAGE_INTERPS),
    help=f"Image resize filter. {default_note(TrainConfig.image_interp)}",
)
@click.option(
    "--split-source",
    help="auto, reference, official, or a split file/folder. "
    f"{default_note(TrainConfig.split_source)}",
)
@click.option("--device", help=f"auto, cpu, cuda or cuda:N. {default_note(TrainConfig.device)}")
@click.option(
    "--amp",
    type=click.Choice(AMP_MODES),
    help=f"Mixed precision (fp16 needs CUDA). {default_note(TrainConfig.amp)}",
)
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory format.")
@click.option("--deterministic/--no-deterministic", default=None, help="Deterministic algorithms.")
@click.option(
    "--seed", type=int, help=f"Seed for init and batch sampling. {default_note(TrainConfig.seed)}"
)
@click.option(
    "--ckpt-every",
    type=int,
    help=f"Checkpoint interval in iterations. {default_note(TrainConfig.ckpt_every)}",
)
@click.option(
    "--keep-last",
    type=int,
    help=f"step_*.pt files kept besides {LAST_CKPT} and {BEST_CKPT}. "
    f"{default_note(TrainConfig.keep_last)}",
)
@click.option(
    "--val-every",
    type=int,
    help=f"Validation interval; 0 turns it off. {default_note(TrainConfig.val_every)}",
)
@click.option(
    "--log-every",
    type=int,
    help=f"Logging interval in iterations. {default_note(TrainConfig.log_every)}",
)
@click.option(
    "--resume",
    is_flag=True,
    help=f"Continue the run in --out (or the preset's out) from its {LAST_CKPT}, with the "
    f"settings of its {CONFIG_FILE}; flags given here override them, except the architecture.",
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
