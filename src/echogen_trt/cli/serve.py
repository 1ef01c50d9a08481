"""`echogen-trt serve`: the model behind an HTTP API with dynamic batching, and a drawing page."""

from __future__ import annotations

from typing import Any

import click

from echogen_trt.errors import BackendUnavailable
from echogen_trt.runtime.registry import AUTO, describe_suffixes, names


@click.command("serve")
@click.option(
    "--model",
    "-m",
    required=True,
    type=click.Path(dir_okay=False),
    help=f"{describe_suffixes().capitalize()}.",
)
@click.option("--backend", type=click.Choice([AUTO, *names()]), help="Default: from suffix.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. 0.0.0.0 exposes the service to the network (no authentication).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-batch", default=8, show_default=True, type=click.IntRange(min=1),
    help="Most requests run as one model call.",
)  # fmt: skip
@click.option(
    "--max-delay-ms", default=5.0, show_default=True, type=click.FloatRange(min=0),
    help="How long the first request of a batch waits for others.",
)  # fmt: skip
@click.option(
    "--max-body-mb", default=16.0, show_default=True, type=click.FloatRange(min=0.001),
    help="Largest request body; bigger ones get 413.",
)  # fmt: skip
@click.option(
    "--max-pixels", type=click.IntRange(min=1), help="Largest mask [67108864 = 8192x8192]."
)
def serve(model: str, host: str, port: int, max_body_mb: float, **options: Any) -> None:
    """Serve MODEL over HTTP: a mask-drawing page at /, POST /v1/generate, /v1/model,
    /healthz, /readyz, /metrics. Binds to 127.0.0.1 unless --host says otherwise.

    \b
    Example:
      echogen-trt serve --model demo/models/echogen.onnx
      open http://127.0.0.1:8000/
    """
    try:
        from echogen_trt.serve.requests import Limits
        from echogen_trt.serve.server import run_server
    except ImportError as err:
        raise BackendUnavailable(
            f"serve | {err.name or 'a package'} is not installed. Expected the serve extra. "
            "Hint: pip install 'echogen-trt[serve]'."
        ) from err
    limits = Limits(int(max_body_mb * 1024 * 1024))
    if options.get("max_pixels") is not None:
        limits = Limits(limits.max_body_bytes, options["max_pixels"])
    kwargs = {k: v for k, v in options.items() if v is not None and k != "max_pixels"}
    click.echo(f"serving {model} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    run_server(model, host=host, port=port, limits=limits, **kwargs)
