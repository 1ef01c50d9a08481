"""`echogen-trt triton-repo`: an NVIDIA Triton model repository for engines, ONNX files and IRs."""

from __future__ import annotations

from pathlib import Path

import click

from echogen_trt.deploy.triton_repo import KINDS, RepoOptions, write_triton_repo


@click.command("triton-repo")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--out", "-o", required=True, type=click.Path(file_okay=False), help="The repository folder."
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    help=f"max_batch_size for models with a dynamic batch axis [{RepoOptions().max_batch}]; "
    "engines use their profile's maximum.",
)
@click.option(
    "--queue-delay-us",
    type=click.IntRange(min=0),
    help=f"Dynamic batching's max_queue_delay_microseconds [{RepoOptions().queue_delay_us}].",
)
@click.option(
    "--instance",
    type=click.Choice(KINDS),
    help="Where ONNX models run (instance_group kind) [gpu]; engines run on GPU, IRs on CPU.",
)
def triton_repo(
    models: tuple[str, ...],
    out: str,
    max_batch: int | None,
    queue_delay_us: int | None,
    instance: str | None,
) -> None:
    """Write an NVIDIA Triton model repository for MODELS (.engine/.plan, .onnx, .xml IR).

    One folder per model, named after the file's stem: config.pbtxt and 1/model.plan,
    1/model.onnx or 1/model.xml + model.bin.

    \b
    Example:
      echogen-trt triton-repo runs/exp/model.engine runs/exp/model.onnx --out repo/
      docker run --gpus all -p 8000:8000 -v $PWD/repo:/models \\
        nvcr.io/nvidia/tritonserver:<release>-py3 tritonserver --model-repository=/models
    """
    default = RepoOptions()
    opts = RepoOptions(
        max_batch=default.max_batch if max_batch is None else max_batch,
        queue_delay_us=default.queue_delay_us if queue_delay_us is None else queue_delay_us,
        instance=instance or default.instance,
    )
    written = write_triton_repo(list(models), out, opts)
    for model in written:
        batch = f"max_batch_size {model.max_batch_size}"
        click.echo(f"{Path(out) / model.name}: {model.backend} backend, {batch}")
        for note in model.notes:
            click.echo(f"  {note}")
