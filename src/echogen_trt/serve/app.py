"""The HTTP routes: the page, the generation API, model metadata, health and metrics.

Starlette on uvicorn. Request handling never blocks the event loop: decoding and encoding run in
the thread pool, inference in the batcher's worker. Every user error is a 4xx with a JSON body
`{"error": "one line"}`; the server keeps serving whatever a request holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
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
from echogen_trt.serve import phantom
from echogen_trt.serve.batcher import Closed, DynamicBatcher
from echogen_trt.serve.metrics import CONTENT_TYPE, ServerMetrics
from echogen_trt.serve.requests import (
    OUTPUT_FORMATS,
    Limits,
    RequestRejected,
    mask_from_body,
    one_line,
    output_format,
    status_of,
    too_large,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ROUTES = ("/", "/v1/generate", "/v1/model", "/v1/phantom", "/healthz", "/readyz", "/metrics")


@dataclass
class ServeState:
    """What the routes share: the batcher (which owns the model), limits and metrics."""

    batcher: DynamicBatcher
    limits: Limits
    metrics: ServerMetrics
    model_name: str

    @property
    def meta(self) -> ModelMeta:
        if self.batcher.meta is None:
            raise InternalError("ServeState.meta | the batcher has not opened the model")
        return self.batcher.meta


def create_app(state: ServeState) -> ASGIApp:
    """The ASGI app for a started batcher: Starlette routes inside a body limit and metrics."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def generate(request: Request) -> Response:
        fmt = output_format(request.query_params.get("format"), request.headers.get("accept", ""))
        size = request.query_params.get("size", "model")
        if size not in ("model", "original"):
            raise RequestRejected(f"size {size!r} | unknown. Expected model or original.")
        body, kind, source = await _read_mask_body(request)
        mask, prepared = await run_in_threadpool(_decode, state, body, kind, source)
        if not state.batcher.ready:
            raise Closed("server | not serving (starting or stopping). Hint: retry shortly.")
        frame = await asyncio.wrap_future(state.batcher.submit(prepared))
        if size == "original":
            frame = state.batcher.gen.restore(frame, mask.shape)
        data = await run_in_threadpool(encode_frame, f"frame.{fmt}", frame)
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

    routes = [
        Route("/", index),
        Route("/v1/generate", generate, methods=["POST"]),
        Route("/v1/model", model),
        Route("/v1/phantom", phantom_mask),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            EchogenError: _user_error,
            HTTPException: _http_error,
            Exception: _bug,
        },
    )
    app.state.serve = state
    return _Timed(_BodyLimit(app, state.limits.max_body_bytes), state.metrics)


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
    mask = mask_from_body(body, kind, state.limits, source)
    return mask, state.batcher.gen.prepare(mask)


async def _user_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, EchogenError)
    status = 503 if isinstance(err, Closed) else status_of(err)
    log.info("%s %s -> %d: %s", request.method, request.url.path, status, one_line(err))
    return JSONResponse({"error": one_line(err)}, status_code=status)


async def _http_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    return JSONResponse({"error": one_line(err.detail)}, status_code=err.status_code)


async def _bug(request: Request, err: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(err).__name__})"}, status_code=500)


class _BodyLimit:
    """Refuse bodies over `limit` bytes: from Content-Length at once, else while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.limit:
            err = too_large(int(declared), self.limit)
            await JSONResponse({"error": one_line(err)}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise too_large(seen, self.limit)
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
