"""Run the service: open the model behind a dynamic batcher, serve the app with uvicorn.

`serving(...)` is the library entry (a context manager that yields the app, its batcher started
and warmed up, and stops it after); `run_server(...)` adds uvicorn and blocks, as
`echogen-trt serve` does. The limits (`ServeLimits`) are decided in `limits.py`; here they become
uvicorn's settings: keep-alive, graceful-shutdown bound, and our protocol's header timeout and
connection limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from echogen_trt.errors import ConfigError
from echogen_trt.runtime.mask_to_echo import MaskToEcho
from echogen_trt.serve.app import ServeState, create_app
from echogen_trt.serve.batcher import DynamicBatcher
from echogen_trt.serve.guard import allowed_hosts
from echogen_trt.serve.limits import ServeLimits
from echogen_trt.serve.metrics import ServerMetrics
from echogen_trt.serve.protocol import AcceptErrors, guarded_protocol

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@contextmanager
def service_state(
    model: str | os.PathLike[str],
    *,
    backend: str | None = None,
    max_batch: int = 8,
    max_delay_ms: float = 5.0,
    limits: ServeLimits | None = None,
    host: str = DEFAULT_HOST,
    allowed_host: Iterable[str] = (),
    cors_origin: Iterable[str] = (),
    **backend_opts: Any,
) -> Iterator[ServeState]:
    """What a service for `model` holds: the batcher started (the model opened and warmed up,
    or the reason it cannot run raised here, in one line), stopped on exit."""
    limits = limits or ServeLimits()
    metrics = ServerMetrics()
    gen = MaskToEcho(model, backend, batch_size=max_batch, **backend_opts)
    batcher = DynamicBatcher(
        gen,
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        max_queue=limits.max_queue,
        on_batch=metrics.observe_batch,
    )
    batcher.start()
    try:
        hosts = allowed_hosts(host, allowed_host)
        yield ServeState(batcher, limits, metrics, Path(model).name, hosts, tuple(cors_origin))
    finally:
        batcher.stop()


@contextmanager
def serving(model: str | os.PathLike[str], **options: Any) -> Iterator[Any]:
    """The ASGI app for `model` (options as `service_state`), its batcher stopped on exit."""
    with service_state(model, **options) as state:
        yield create_app(state)


def run_server(
    model: str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM), then close the model.

    SIGTERM stops accepting, lets requests in flight finish for at most
    `limits.graceful_timeout_s`, cancels the rest and exits.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port | {port}. Expected 0..65535.")
    with service_state(model, host=host, **options) as state:
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "serving on %s: reachable from other machines; there is no authentication", host
            )
        limits = state.limits
        config = uvicorn.Config(
            create_app(state),
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            loop="asyncio",
            http=guarded_protocol(limits, state.metrics),
            timeout_keep_alive=max(1, round(limits.keep_alive_s)),
            timeout_graceful_shutdown=max(1, round(limits.graceful_timeout_s)),
        )
        _Server(config, AcceptErrors(state.metrics)).run()


class _Server(uvicorn.Server):
    """uvicorn.Server with our accept-error handler installed on its loop."""

    def __init__(self, config: uvicorn.Config, handler: AcceptErrors) -> None:
        super().__init__(config)
        self.handler = handler

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(self.handler)
        await super().startup(sockets)
