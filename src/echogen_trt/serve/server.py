"""Run the service: open the model behind a dynamic batcher, serve the app with uvicorn.

`serving(...)` is the library entry (a context manager that yields the app and stops the
batcher after); `run_server(...)` adds uvicorn and blocks, as `echogen-trt serve` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from echogen_trt.errors import ConfigError
from echogen_trt.runtime.mask_to_echo import MaskToEcho
from echogen_trt.serve.app import ServeState, create_app
from echogen_trt.serve.batcher import DynamicBatcher
from echogen_trt.serve.metrics import ServerMetrics
from echogen_trt.serve.requests import Limits

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@contextmanager
def serving(
    model: str | os.PathLike[str],
    *,
    backend: str | None = None,
    max_batch: int = 8,
    max_delay_ms: float = 5.0,
    limits: Limits | None = None,
    **backend_opts: Any,
) -> Iterator[Any]:
    """The ASGI app for `model`, its batcher started; stopped (model closed) on exit."""
    metrics = ServerMetrics()
    gen = MaskToEcho(model, backend, batch_size=max_batch, **backend_opts)
    batcher = DynamicBatcher(
        gen, max_batch=max_batch, max_delay_ms=max_delay_ms, on_batch=metrics.observe_batch
    )
    batcher.start()
    try:
        state = ServeState(batcher, limits or Limits(), metrics, Path(model).name)
        yield create_app(state)
    finally:
        batcher.stop()


def run_server(
    model: str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM), then close the model."""
    import uvicorn

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port | {port}. Expected 0..65535.")
    with serving(model, **options) as app:
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "serving on %s: reachable from other machines; there is no authentication", host
            )
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
        uvicorn.Server(config).run()
