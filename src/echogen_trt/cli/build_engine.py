"""`echogen-trt build-engine`: a thin click layer over `export.trt_build.build_engine`."""

from __future__ import annotations

import json

import click

from echogen_trt.artifacts.precision import ENGINE_CHOICES, ENGINE_DEFAULT
from echogen_trt.export.trt_presets import DEFAULT_TARGET, TARGETS


@click.command("build-engine")
@click.argument("onnx_path", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--out", type=click.Path(dir_okay=False), default=None,
    help="Engine file to write (default: MODEL.engine). Provenance goes to <out>.json.",
)  # fmt: skip
@click.option(
    "--precision", type=click.Choice(ENGINE_CHOICES), default=None,
    help=f"Engine precision (default {ENGINE_DEFAULT}). On TensorRT 11 an fp16 engine is built "
    "from MODEL's verified .fp16.onnx sibling, or from MODEL converted to FP16 and PSNR-checked.",
)  # fmt: skip
@click.option("--min-batch", type=int, default=None, help="Smallest batch (default 1).")
@click.option("--opt-batch", type=int, default=None, help="Batch tuned for (desktop 8, jetson 1).")
@click.option("--max-batch", type=int, default=None, help="Largest batch (desktop 32, jetson 8).")
@click.option(
    "--workspace-mb", type=int, default=None,
    help="Builder workspace in MiB (desktop 4096, jetson 1024).",
)  # fmt: skip
@click.option(
    "--timing-cache", type=click.Path(dir_okay=False), default=None,
    help="Persistent timing cache: loaded if present, saved after the build (faster rebuilds).",
)  # fmt: skip
@click.option(
    "--dla-core", type=int, default=None,
    help="Jetson: run on this DLA core (GPU fallback on); forces a static batch (--opt-batch).",
)  # fmt: skip
@click.option(
    "--target", type=click.Choice(sorted(TARGETS)), default=None,
    help=f"Preset for workspace and batch sizes (default {DEFAULT_TARGET}).",
)  # fmt: skip
@click.option("--device", type=int, default=0, show_default=True, help="CUDA device index.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def build_engine(
    onnx_path: str,
    out: str | None,
    precision: str | None,
    min_batch: int | None,
    opt_batch: int | None,
    max_batch: int | None,
    workspace_mb: int | None,
    timing_cache: str | None,
    dla_core: int | None,
    target: str | None,
    device: int,
    as_json: bool,
) -> None:
    """Build a TensorRT engine from an exported ONNX file, on the GPU that will run it.

    Engines are tied to the TensorRT version and the GPU: build on the deployment machine
    (on a Jetson, on the Jetson itself). The provenance written beside the engine lets
    `generate` refuse a mismatched engine with the command that rebuilds it.
    """
    from echogen_trt.export import trt_build

    result = trt_build.build_engine(
        onnx_path, out, precision=precision, min_batch=min_batch, opt_batch=opt_batch,
        max_batch=max_batch, workspace_mb=workspace_mb, timing_cache=timing_cache,
        dla_core=dla_core, target=target, device=device,
    )  # fmt: skip
    summary = result.to_dict()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    opts = summary["options"]
    click.echo(f"engine      {summary['engine']} ({summary['engine_mb']} MB)")
    click.echo(f"provenance  {summary['provenance']}")
    click.echo(
        f"built       TensorRT {summary['tensorrt_version']} on {summary['device']} "
        f"(sm {summary['compute_capability']}) in {summary['seconds']} s"
    )
    click.echo(
        f"precision   {summary['precision']} ({'strong' if summary['strongly_typed'] else 'weak'}"
        f" typing), layers {summary['layer_precisions']}"
    )
    click.echo(f"batch       {opts['min_batch']}/{opts['opt_batch']}/{opts['max_batch']}")
    source = summary["built_from"]
    if source.get("kind") != "as-given":
        gate = f", PSNR {source['psnr_db']:.1f} dB vs FP32" if source.get("psnr_db") else ""
        click.echo(f"parsed      {source['path']} ({source['kind']}{gate})")
    click.echo(f"trtexec     {summary['trtexec']}")
