"""The HTTP routes: the page, the generation API, model metadata, health and metrics.

Starlette on uvicorn. Request handling never blocks the event loop: decoding and encoding run in
the thread pool, inference in the batcher's worker. Every user error is a 4xx with a JSON body
`{"error": "one line"}`; the server keeps serving whatever a request holds.

What one request may cost is bounded (`limits.ServeLimits`): at most `upload_slots` requests read
and decode a body at once (more get 503 + Retry-After, before their body is read), a body must
arrive within `body_timeout_s`, and a request that has not got its frame `request_timeout_s`
after its headers gets 503 + Retry-After, its place in the batcher's queue given up. A client
that hangs up is counted as 499, without a traceback. The batcher (and the model) belong to the
app's lifespan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from echogen_trt import __version__
from echogen_trt.artifacts.labels import LABEL_TITLES
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import EchogenError, InternalError
from echogen_trt.runtime import registry
from echogen_trt.runtime.io import encode_frame
from echogen_trt.serve import page_routes, phantom
from echogen_trt.serve.batcher import Closed, DynamicBatcher
from echogen_trt.serve.guard import LOOPBACK_NAMES, Guard
from echogen_trt.serve.limits import ServeLimits
from echogen_trt.serve.metrics import CONTENT_TYPE, ServerMetrics
from echogen_trt.serve.requests import (
    OUTPUT_FORMATS,
    RequestRejected,
    mask_from_body,
    one_line,
    output_format,
    refusal_of,
    too_large,
)
from echogen_trt.serve.v2 import v2_routes

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ROUTES = ("/", "/v1/generate", "/v1/model", "/v1/phantom", "/healthz", "/readyz", "/metrics",
          *page_routes.PATHS)  # fmt: skip


@dataclass
class ServeState:
    """What the routes share: the batcher (which owns the model), limits and metrics, and
    the Host names and foreign origins the service answers."""

    batcher: DynamicBatcher
    limits: ServeLimits
    metrics: ServerMetrics
    model_name: str
    hosts: frozenset[str] = frozenset(LOOPBACK_NAMES)
    cors_origins: tuple[str, ...] = ()
    upload_waiters: int = field(default=0, init=False)  # requests waiting for an upload slot
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)

    @asynccontextmanager
    async def upload_slot(self, deadline: float) -> AsyncIterator[None]:
        """One of `limits.upload_slots` (bodies and decoding are what cost memory, so only so
        many run at once), waited for until `deadline`; 503 at once when `limits.max_queue`
        requests already wait, or when the deadline passes."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limits.upload_slots)
        if self._slots.locked() and self.upload_waiters >= self.limits.max_queue:
            raise _busy(f"{self.upload_waiters} requests already wait to upload")
        if self._slots.locked():
            self.upload_waiters += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise _busy("no upload slot came free before the request's deadline") from None
            finally:
                self.upload_waiters -= 1
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            yield
        finally:
            self._slots.release()

    async def frame(self, prepared: np.ndarray, deadline: float) -> np.ndarray:
        """The batcher's frame for `prepared`, or 503 once `deadline` passes (the queued request
        is cancelled, so the worker skips it)."""
        future = asyncio.wrap_future(self.batcher.submit(prepared))
        try:
            return await asyncio.wait_for(future, max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            raise RequestRejected(
                f"server | no frame within {self.limits.request_timeout_s:g} s (the model is "
                "behind). Expected a less loaded server. Hint: retry after the Retry-After "
                "seconds.",
                503,
                "deadline",
            ) from None

    @property
    def meta(self) -> ModelMeta:
        if self.batcher.meta is None:
            raise InternalError("ServeState.meta | the batcher has not opened the model")
        return self.batcher.meta


def create_app(state: ServeState) -> ASGIApp:
    """The ASGI app: Starlette routes inside a body limit, the Host/Origin guard and metrics;
    its lifespan starts the batcher (opens the model, warms it up) and stops it."""
    limits = state.limits

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def generate(request: Request) -> Response:
        fmt = output_format(request.query_params.get("format"), request.headers.get("accept", ""))
        size = request.query_params.get("size", "model")
        if size not in ("model", "original"):
            raise RequestRejected(f"size {size!r} | unknown. Expected model or original.")
        deadline = time.monotonic() + limits.request_timeout_s
        if not state.batcher.ready:
            raise Closed("server | not serving (starting or stopping). Hint: retry shortly.")
        async with state.upload_slot(deadline):
            body, kind, source = await _read_mask_body(request)
            mask, prepared = await run_in_threadpool(_decode, state, body, kind, source)
            shape = (int(mask.shape[0]), int(mask.shape[1]))
            del body, mask  # a queued request holds only its model-size tensor
        frame = await state.frame(prepared, deadline)
        if size != "original":
            data = await run_in_threadpool(encode_frame, f"frame.{fmt}", frame)
            return Response(data, media_type=OUTPUT_FORMATS[fmt])
        async with state.upload_slot(deadline):  # a mask-size frame: memory like a decode
            data = await run_in_threadpool(_encode_at, state, frame, shape, fmt)
        return Response(data, media_type=OUTPUT_FORMATS[fmt])

    async def model(request: Request) -> Response:
        return JSONResponse(model_info(state))

    async def phantom_mask(request: Request) -> Response:
        query = dict(request.query_params)
        fmt = query.get("format", "png")
        if fmt not in ("png", "json"):
            raise RequestRejected(f"format {fmt!r} | unknown. Expected png or json.")
        shape = phantom.shape_from_query(query)
        mask = await run_in_threadpool(phantom.phantom_mask, shape, state.meta.input_size)
        if fmt == "json":
            return JSONResponse({"mask": mask.tolist(), **asdict(shape)})
        return Response(encode_frame("mask.png", mask), media_type="image/png")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = state.batcher.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.text(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(state.batcher.start)  # nothing to do when already started
        try:
            yield
        finally:
            await run_in_threadpool(state.batcher.stop)

    routes = [
        Route("/", index),
        Route("/v1/generate", generate, methods=["POST"]),
        Route("/v1/model", model),
        Route("/v1/phantom", phantom_mask),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *page_routes.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *v2_routes(
            state, ServeState.frame
        ),  # the Open Inference Protocol (KServe v2), same batcher
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            EchogenError: _user_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _bug,
        },
        lifespan=lifespan,
    )
    app.state.serve = state
    inner: ASGIApp = _BodyLimit(app, limits, state.metrics)
    if state.cors_origins:
        inner = CORSMiddleware(
            inner, allow_origins=state.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["content-type"],
        )  # fmt: skip
    guarded = Guard(inner, state.hosts, state.cors_origins, state.metrics.observe_refusal)
    return _Timed(guarded, state.metrics)


def _busy(why: str) -> RequestRejected:
    return RequestRejected(
        f"server | {why}. Expected fewer requests at once. Hint: retry after the Retry-After "
        "seconds.",
        503,
        "busy",
    )


def model_info(state: ServeState) -> dict[str, Any]:
    """GET /v1/model: what the model is and expects (Triton's model metadata, plus ours)."""
    gen = state.batcher.gen
    backend = gen.backend

    def specs(tensors: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"name": name, "datatype": str(spec.dtype), "shape": [d or -1 for d in spec.shape]}
            for name, spec in tensors.items()
        ]

    meta = state.meta
    record = registry.record(backend.name)
    return {
        "name": state.model_name,
        "backend": record.name,
        "backend_info": {
            "title": record.title,
            "suffixes": [*record.suffixes, *record.also_reads],
            "precisions": list(record.precisions),
        },
        "version": __version__,
        "inputs": specs(backend.inputs),
        "outputs": specs(backend.outputs),
        "meta": asdict(meta),
        "labels": {str(value): title for value, title in LABEL_TITLES.items()},
        "batching": {
            "max_batch": state.batcher.max_batch,
            "max_delay_ms": state.batcher.max_delay_s * 1000.0,
        },
        "limits": asdict(state.limits),
        "memory_bound_bytes": {
            "request": state.limits.request_memory_bytes,
            "requests_at_once": state.limits.service_memory_bytes,
        },
        "phantom_ranges": phantom.RANGES,
        "phantom_fan_half_angle_deg": phantom.HALF_ANGLE_DEG,
    }


async def _read_mask_body(request: Request) -> tuple[bytes, str, str]:
    """(bytes, content type, subject for messages): the raw body or the first uploaded file."""
    kind = request.headers.get("content-type", "")
    if not kind.lower().startswith("multipart/form-data"):
        return await request.body(), kind, "request body"
    try:
        form = await request.form(max_files=1, max_fields=8)
    except HTTPException as err:  # malformed multipart: Starlette's reason, in our shape
        raise RequestRejected(
            f"multipart request | {one_line(err.detail)}. Expected one file field holding the mask."
        ) from err
    try:
        for value in form.values():
            if isinstance(value, UploadFile):
                name = value.filename or "upload"
                return await value.read(), "application/octet-stream", f"upload {name!r}"
    finally:
        await form.close()
    raise RequestRejected(
        "multipart request | no file in it. Expected one file field holding the mask."
    )


def _decode(
    state: ServeState, body: bytes, kind: str, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """(mask, prepared tensor) of a body; the format from its magic bytes, sized first."""
    mask = mask_from_body(body, kind, state.limits, source)
    return mask, state.batcher.gen.prepare(mask)


def _encode_at(state: ServeState, frame: np.ndarray, shape: tuple[int, int], fmt: str) -> bytes:
    """The frame brought back to the mask's (H, W) (MaskToEcho's one rule), encoded."""
    return encode_frame(f"frame.{fmt}", state.batcher.gen.restore(frame, shape))


async def _user_error(request: Request, err: Exception) -> Response:
    if not isinstance(err, EchogenError):
        raise InternalError(f"_user_error | got {type(err).__name__}") from err
    state: ServeState = request.app.state.serve
    status, reason = refusal_of(err)
    state.metrics.observe_refusal(reason)
    # debug, not info: a client that sends thousands of bad requests must not grow the log;
    # /metrics counts refusals by reason
    log.debug("%s %s -> %d: %s", request.method, request.url.path, status, one_line(err))
    headers = {"Retry-After": str(state.limits.retry_after_s)} if status == 503 else None
    return JSONResponse({"error": one_line(err)}, status_code=status, headers=headers)


async def _http_error(request: Request, err: Exception) -> Response:
    if not isinstance(err, HTTPException):
        raise InternalError(f"_http_error | got {type(err).__name__}") from err
    request.app.state.serve.metrics.observe_refusal(f"http_{err.status_code}")
    return JSONResponse(  # err.headers: 405's Allow
        {"error": one_line(err.detail)}, status_code=err.status_code, headers=err.headers
    )


async def _client_gone(request: Request, err: Exception) -> Response:
    """The client hung up mid-request: nothing to answer; counted as 499 (nginx's code)."""
    request.app.state.serve.metrics.observe_refusal("client_disconnect")
    log.debug("%s %s: the client disconnected", request.method, request.url.path)
    return Response(status_code=499)


async def _bug(request: Request, err: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(err).__name__})"}, status_code=500)


class _BodyLimit:
    """Refuse bodies over `max_body_bytes` (from Content-Length at once, else while streaming)
    and bodies that take longer than `body_timeout_s` to arrive (408)."""

    def __init__(self, app: ASGIApp, limits: ServeLimits, metrics: ServerMetrics) -> None:
        self.app, self.limits, self.metrics = app, limits, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            self.metrics.observe_refusal("too_large")
            err = too_large(int(declared), limit)
            await JSONResponse({"error": one_line(err)}, status_code=413)(scope, receive, send)
            return
        seen = 0
        deadline = time.monotonic() + self.limits.body_timeout_s

        async def limited() -> Message:
            nonlocal seen
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                raise RequestRejected(
                    f"request body | {seen:,} bytes arrived in {self.limits.body_timeout_s:g} "
                    "s. Expected the whole body within that time. Hint: send a smaller mask "
                    "(PNG), or check the connection.",
                    408,
                    "body_timeout",
                ) from None
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(seen, limit)
            return message

        await self.app(scope, limited, send)


class _Timed:
    """Count and time every request by route (unknown paths as "other") and status."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in ROUTES else ("/static" if path.startswith("/static/") else "other")
        route = "/v2" if path == "/v2" or path.startswith("/v2/") else route  # the v2 protocol
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.observe_request(route, status, time.perf_counter() - start)
