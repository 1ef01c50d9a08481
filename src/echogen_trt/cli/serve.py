"""`echogen-trt serve`: the model behind an HTTP API with dynamic batching, and a drawing page."""

from __future__ import annotations

from typing import Any

import click

from echogen_trt.errors import BackendUnavailable
from echogen_trt.option_values import default_note
from echogen_trt.runtime.registry import AUTO, describe_suffixes, names
from echogen_trt.serve.limits import FD_RESERVE, ServeLimits

# Options that map one-to-one onto ServeLimits fields (their defaults live there, once).
LIMIT_OPTIONS = (
    "max_pixels", "max_queue", "upload_slots", "request_timeout_s", "header_timeout_s",
    "body_timeout_s", "max_connections", "graceful_timeout_s",
)  # fmt: skip


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
    "--allowed-host", multiple=True, metavar="NAME",
    help="Another Host name to answer (repeatable; '*' any). Default: loopback and --host.",
)  # fmt: skip
@click.option(
    "--cors-origin", multiple=True, metavar="ORIGIN",
    help="A web origin (https://site:port) allowed to POST from its pages (repeatable).",
)  # fmt: skip
@click.option(
    "--max-batch", default=8, show_default=True, type=click.IntRange(min=1),
    help="Most requests run as one model call.",
)  # fmt: skip
@click.option(
    "--max-delay-ms", default=5.0, show_default=True, type=click.FloatRange(min=0),
    help="How long the first request of a batch waits for others.",
)  # fmt: skip
@click.option(
    "--max-body-mb", type=click.FloatRange(min=0.001),
    help="Largest request body; bigger ones get 413. "
    f"{default_note(ServeLimits.max_body_bytes / 2**20)}",
)  # fmt: skip
@click.option(
    "--max-pixels", type=click.IntRange(min=1),
    help=f"Largest mask; bigger get 413. {default_note(ServeLimits.max_pixels)}",
)  # fmt: skip
@click.option(
    "--max-queue", type=click.IntRange(min=1),
    help=f"Masks waiting for the model; then 503. {default_note(ServeLimits.max_queue)}",
)  # fmt: skip
@click.option(
    "--upload-slots", type=click.IntRange(min=1),
    help="Requests reading/decoding a body at once; then 503. Bounds memory. "
    f"{default_note(ServeLimits.upload_slots)}",
)  # fmt: skip
@click.option(
    "--request-timeout-s", type=click.FloatRange(min=0.001),
    help="Headers to frame, queue included; then 503. "
    f"{default_note(ServeLimits.request_timeout_s)}",
)  # fmt: skip
@click.option(
    "--header-timeout-s", type=click.FloatRange(min=0.001),
    help="A connection must send its request headers within this; else closed. "
    f"{default_note(ServeLimits.header_timeout_s)}",
)  # fmt: skip
@click.option(
    "--body-timeout-s", type=click.FloatRange(min=0.001),
    help="The whole request body must arrive within this; else 408. "
    f"{default_note(ServeLimits.body_timeout_s)}",
)  # fmt: skip
@click.option(
    "--max-connections", type=click.IntRange(min=1),
    help="Connections served at once; more get 503. "
    f"{default_note(f'open-file limit - {FD_RESERVE}')}",
)  # fmt: skip
@click.option(
    "--graceful-timeout-s", type=click.FloatRange(min=0.001),
    help="On SIGTERM, how long requests in flight may finish. "
    f"{default_note(ServeLimits.graceful_timeout_s)}",
)  # fmt: skip
def serve(model: str, host: str, port: int, max_body_mb: float | None, **options: Any) -> None:
    """Serve MODEL over HTTP: a mask-drawing page at /, POST /v1/generate, /v1/model,
    /healthz, /readyz, /metrics. Binds to 127.0.0.1 unless --host says otherwise.

    \b
    Example:
      echogen-trt serve --model demo/models/echogen.onnx
      open http://127.0.0.1:8000/
    """
    try:
        from echogen_trt.serve.server import run_server
    except ImportError as err:
        raise BackendUnavailable(
            f"serve | {err.name or 'a package'} is not installed. Expected the serve extra. "
            "Hint: pip install 'echogen-trt[serve]'."
        ) from err
    body = None if max_body_mb is None else int(max_body_mb * 1024 * 1024)
    limits = ServeLimits().with_options(
        max_body_bytes=body, **{k: options.pop(k) for k in LIMIT_OPTIONS}
    )
    kwargs = {k: v for k, v in options.items() if v is not None}
    click.echo(f"serving {model} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    run_server(model, host=host, port=port, limits=limits, **kwargs)
