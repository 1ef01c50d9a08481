"""`echogen-trt demo`: the main job in one command, on built-in phantom data.

A thin layer over `echogen_trt.demo.run_demo`. The hidden options shrink the run (tests, quick
looks); the visible ones are what a new user needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from echogen_trt.demo.config import DemoConfig
from echogen_trt.option_values import default_note


@click.command("demo")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder for everything the demo writes.  {default_note(DemoConfig.out)}",
)  # fmt: skip
@click.option("--fresh", is_flag=True, help="Redo every step, even those that are up to date.")
@click.option(
    "--minutes", type=float,
    help="Training budget: training stops when it runs out, whatever the machine's load. "
    f"{default_note(DemoConfig.minutes)}",
)  # fmt: skip
@click.option(
    "--patients", type=int,
    help=f"Phantom patients to synthesise.  {default_note(DemoConfig.patients)}",
)  # fmt: skip
@click.option(
    "--device", help="Training device: auto, cpu, cuda or cuda:N (auto: a GPU trains the full "
    f"reference model).  {default_note(DemoConfig.device)}",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
# hidden: shrink the run for tests and quick looks
@click.option("--width", type=int, hidden=True)
@click.option("--image-size", type=int, hidden=True)
@click.option("--iters", type=int, hidden=True)
@click.option("--batch-size", type=int, hidden=True)
@click.option("--seed", type=int, hidden=True)
@click.option("--bench-batches", hidden=True)
@click.option("--bench-seconds", type=float, hidden=True)
@click.option("--no-bench-ceiling", is_flag=True, hidden=True)
@click.option("--eval-seg-iters", type=int, hidden=True)
@click.option("--eval-judges", type=int, hidden=True)
@click.option("--eval-min-dice", type=float, hidden=True)
def demo(as_json: bool, no_bench_ceiling: bool, fresh: bool, **options: Any) -> None:
    """Run the whole pipeline on phantom data and write a report.

    \b
    Steps (each reused on the next run when its inputs did not change):
      1. synthesise phantom patients (CAMUS layout)   5. generate frames for held-out masks
      2. train a generator (a few minutes on a CPU)   6. evaluate (segmentation Dice, KID)
      3. export ONNX FP32 + FP16, verified            7. benchmark latency
      4. build a TensorRT engine (where possible)     8. report: metrics, contact sheet,
                                                         latency table, environment

    \b
    Example:
      echogen-trt demo --out demo/
      open demo/report.md
    """
    from echogen_trt.demo import run_demo
    from echogen_trt.demo.config import config_from_options

    cfg = config_from_options(
        options, fresh=fresh, progress=not as_json, bench_ceiling=not no_bench_ceiling
    )
    summary = run_demo(cfg)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
        return
    for i, step in enumerate(summary.steps, 1):
        click.echo(f"{i}. {step.name:<9} {step.status:<8} {step.seconds:7.1f} s  {step.detail}")
    for name, m in summary.metrics.items():
        click.echo(
            f"held-out {name:<9} L1 {m['l1']:.4f}  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.3f}"
        )
    click.echo(f"finished in {summary.seconds:.0f} s")
    click.echo(f"report: {summary.report}")
