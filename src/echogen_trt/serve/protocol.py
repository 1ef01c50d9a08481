"""Connections that cannot hold the server: uvicorn's h11 protocol with a header timeout and a
connection limit, and accept() errors counted instead of logged one traceback each.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and bounds a graceful
shutdown (`timeout_graceful_shutdown`), but it has no timeout for a connection that never
finishes its request headers, and it accepts connections until the open-file limit, after
which asyncio logs a traceback per failed accept() (thousands a second). So:

- a connection must send a request's headers within `header_timeout_s` of opening (or of
  sending the first byte after a response), else it is closed;
- past `connection_limit` connections (below the open-file limit), a new one is answered 503 +
  Retry-After (its request is read first, so the client sees the answer) and closed, and it
  gets only BUSY_HEADER_TIMEOUT_S to send that request;
- accept() failures are counted, and logged once a minute with the count (asyncio would log a
  traceback for each, thousands a second, and more when its retries outlive the socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from echogen_trt.serve.limits import ServeLimits
from echogen_trt.serve.metrics import ServerMetrics

log = logging.getLogger(__name__)

BUSY_HEADER_TIMEOUT_S = 1.0  # a connection answered "busy" gets this long to send its request
ACCEPT_FAILED = "socket.accept() out of system resource"  # asyncio's message


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a request-header timeout and a connection limit.

    Class attributes set by `guarded_protocol`: `limits`, and `metrics` that count refusals.
    """

    limits: ClassVar[ServeLimits] = ServeLimits()
    metrics: ClassVar[ServerMetrics | None] = None

    def count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_refusal(reason)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.connection_limit:
            self.count("connections")
            self.app = _busy_app(self.limits.retry_after_s)
            self._arm(BUSY_HEADER_TIMEOUT_S)
            return
        self._arm(self.limits.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_headers():
            if self._header_timer is None:  # the first byte of the next request
                self._arm(self.limits.header_timeout_s)
        elif self._header_timer is not None:  # a request's headers are in
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()  # type: ignore[union-attr]
            self._header_timer = None
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self, seconds: float) -> None:
        self._header_timer = self.loop.call_later(seconds, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._waiting_for_headers():
            return
        if self.cycle is None or self.conn.their_state is not h11.DONE:
            self.count("header_timeout")  # not an idle keep-alive connection: a slow one
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


def _busy_app(retry_after_s: int) -> Callable[..., Any]:
    """An ASGI app answering 503 + Retry-After + Connection: close, after reading the body
    (a response cut short by a reset is no answer)."""
    body = json.dumps(
        {"error": "server | at its connection limit. Hint: retry after the Retry-After seconds."}
    ).encode()

    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        more = scope["type"] == "http"
        while more:
            message = await receive()
            more = message["type"] == "http.request" and message.get("more_body", False)
        headers = [
            (b"content-type", b"application/json"),
            (b"retry-after", str(retry_after_s).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return busy


def guarded_protocol(
    limits: ServeLimits, metrics: ServerMetrics | None = None
) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's `http=` with these limits, counting into `metrics`."""
    return type("GuardedH11", (GuardedH11Protocol,), {"limits": limits, "metrics": metrics})


class AcceptErrors:
    """An asyncio exception handler: accept() failures counted, logged once per `every_s`
    with the count; anything else goes to the default handler."""

    def __init__(self, metrics: ServerMetrics | None = None, every_s: float = 60.0) -> None:
        self.metrics, self.every_s = metrics, every_s
        self.total = self.unlogged = 0
        self.logged_at = -float("inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _late_accept_retry(context):
            return
        if context.get("message") != ACCEPT_FAILED:
            loop.default_exception_handler(context)
            return
        self.total += 1
        self.unlogged += 1
        if self.metrics is not None:
            self.metrics.observe_refusal("accept_error")
        now = time.monotonic()
        if now - self.logged_at >= self.every_s:
            log.error(
                "accept() failed %d time(s) (%d in all): %s. Connections wait in the backlog. "
                "Hint: raise `ulimit -n` or lower --max-connections.",
                self.unlogged, self.total, context.get("exception"),
            )  # fmt: skip
            self.logged_at, self.unlogged = now, 0


def _late_accept_retry(context: dict[str, Any]) -> bool:
    """asyncio (3.11) schedules a listening-socket restart 1 s after *each* failed accept() of
    a burst (up to the backlog, 2048); those that fire after shutdown closed the socket raise
    "Invalid file descriptor: -1", a traceback each. They are the tail of errors counted."""
    err = context.get("exception")
    return (
        isinstance(err, ValueError)
        and "Invalid file descriptor" in str(err)
        and "_start_serving" in repr(context.get("handle"))
    )
