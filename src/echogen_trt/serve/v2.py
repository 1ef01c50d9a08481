"""The Open Inference Protocol (KServe v2, as NVIDIA Triton speaks it) on the same batcher.

`tritonclient`, KServe clients and load balancers that probe `/v2/health/ready` talk to
`echogen-trt serve` as they talk to Triton: server and model metadata, liveness and readiness,
and `POST /v2/models/{name}[/versions/1]/infer` with JSON tensors or the binary tensor data
extension (`Inference-Header-Content-Length`, tritonclient's default).

The model takes one integer label tensor named after the model's input, [N, H, W] or [H, W]
at any size (raw labels 0..3 or the x85 convention); masks go through the checks of
`/v1/generate` (`runtime.io.labels_from_values`, the pixel limit) and the one batcher, so frames
are byte-identical to `/v1/generate`'s. The output carries the model's output name, datatype and
shape: UINT8 [N, H, W] for a fused uint8-I/O model, FP32 [N, 1, H, W] for a float model, holding
frame / 255 (the 8-bit frame every route returns, so `rint(y * 255)` gives /v1's bytes back).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from echogen_trt import __version__
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.runtime.io import check_pixels, labels_from_values
from echogen_trt.runtime.registry import record
from echogen_trt.serve.batcher import Closed, DynamicBatcher
from echogen_trt.serve.limits import ServeLimits as Limits
from echogen_trt.serve.requests import RequestRejected, one_line

VERSION = "1"  # the one version a served model file has
HEADER_LENGTH = "Inference-Header-Content-Length"
# The protocol's tensor datatypes that can hold label values (BYTES and BOOL cannot).
DTYPES: dict[str, type[np.generic]] = {
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


class _State(Protocol):
    """What the v2 routes need of `app.ServeState` (typed here, so app imports v2, not back)."""

    batcher: DynamicBatcher
    limits: Limits
    model_name: str

    @property
    def meta(self) -> ModelMeta: ...

    def upload_slot(self, deadline: float) -> AbstractAsyncContextManager[None]: ...


# app's one way from a prepared mask to its frame: (state, prepared, deadline) -> frame, with
# the request deadline and the bounded queue of /v1/generate
FrameOf = Callable[[Any, np.ndarray, float], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class InferRequest:
    """A parsed infer request: prepared masks, the output wanted, and how to send it."""

    prepared: list[np.ndarray]
    batched: bool  # [N, H, W] given (else [H, W]: the answer drops the batch axis too)
    binary: bool
    request_id: str | None


def v2_routes(state: _State, frame_of: FrameOf) -> list[Route]:
    """The v2 routes for `state`'s model, to add to the app's routes; `frame_of` is the app's
    path from a prepared mask to its frame, so both protocols share its limits."""

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {"name": "echogen-trt", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = state.batcher.ready
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def model_metadata(request: Request) -> Response:
        _check_model(state, request)
        return JSONResponse(model_metadata_of(state))

    async def model_ready(request: Request) -> Response:
        _check_model(state, request)
        return await ready(request)

    async def infer(request: Request) -> Response:
        name = _check_model(state, request)
        deadline = time.monotonic() + state.limits.request_timeout_s
        if not state.batcher.ready:
            raise Closed("server | not serving (starting or stopping). Hint: retry shortly.")
        async with state.upload_slot(deadline):
            body = await request.body()
            header = request.headers.get(HEADER_LENGTH)
            parsed = await run_in_threadpool(parse_infer, state, body, header)
            del body
        frames = await frames_for(state, parsed.prepared, deadline, frame_of)
        content, header_size = await run_in_threadpool(
            infer_response, state.meta, name, frames, parsed
        )
        if header_size is None:
            return Response(content, media_type="application/json")
        return Response(
            content,
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(header_size)},
        )

    model = "/v2/models/{name}"
    versioned = model + "/versions/{version}"
    return [
        Route("/v2", server_metadata),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        *(Route(base, model_metadata) for base in (model, versioned)),
        *(Route(base + "/ready", model_ready) for base in (model, versioned)),
        *(Route(base + "/infer", infer, methods=["POST"]) for base in (model, versioned)),
    ]


def model_names(state: _State) -> tuple[str, str]:
    """(v2 name, alias): the file's stem, as `triton-repo` names the model, and the file name."""
    return Path(state.model_name).stem, state.model_name


def model_metadata_of(state: _State) -> dict[str, Any]:
    """GET /v2/models/{name}: the model's real tensor names, protocol datatypes and shapes."""
    meta = state.meta
    height, width = meta.input_size
    out_type, out_dims = output_type(meta)
    backend = state.batcher.gen.backend.name
    platform = record(backend).triton_backend or f"echogen_{backend}"  # Triton's, where it has one
    return {
        "name": model_names(state)[0],
        "versions": [VERSION],
        "platform": platform,
        "inputs": [{"name": meta.input_name, "datatype": "UINT8", "shape": [-1, height, width]}],
        "outputs": [{"name": meta.output_name, "datatype": out_type, "shape": [-1, *out_dims]}],
    }


def output_type(meta: ModelMeta) -> tuple[str, list[int]]:
    """(datatype, dims without the batch) of the model's output, per ModelMeta's contract."""
    height, width = meta.input_size
    return ("UINT8", [height, width]) if meta.io == "uint8" else ("FP32", [1, height, width])


def _check_model(state: _State, request: Request) -> str:
    name = str(request.path_params["name"])
    version = request.path_params.get("version")
    known = model_names(state)
    if name not in known:
        raise RequestRejected(
            f"model {name!r} | not served here. Expected {known[0]!r}. "
            f"Hint: GET /v2/models/{known[0]} lists its tensors.",
            404,
        )
    if version not in (None, "", VERSION):
        raise RequestRejected(
            f"model {name!r} version {version!r} | unknown. Expected version {VERSION}.", 404
        )
    return known[0]


async def frames_for(
    state: _State, prepared: list[np.ndarray], deadline: float, frame_of: FrameOf
) -> list[np.ndarray]:
    """The frames of a request's prepared masks, each through the app's `frame_of`; when one
    fails (queue full, deadline), the others are cancelled, so the worker skips them."""
    if len(prepared) > state.batcher.max_queue:
        raise RequestRejected(
            f"infer request | {len(prepared)} masks, more than the {state.batcher.max_queue} the "
            "model's queue holds. Expected a smaller batch. Hint: split it over several requests.",
            413,
            "too_large",
        )
    tasks = [asyncio.ensure_future(frame_of(state, p, deadline)) for p in prepared]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


# -- request -------------------------------------------------------------------------------------
def parse_infer(state: _State, body: bytes, header_length: str | None) -> InferRequest:
    """An infer request body (JSON, or JSON + binary tensors) as prepared masks; 400 otherwise."""
    doc, binary = _split_body(body, header_length)
    meta = state.meta
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestRejected(
            f'infer request | "inputs" is not a list of one tensor. Expected [{{"name": '
            f'"{meta.input_name}", "datatype": "UINT8", "shape": [N, H, W], "data": [...]}}].'
        )
    array = _tensor(inputs[0], binary, meta.input_name, state.limits)
    _check_batch_pixels(array.shape, meta, state.limits)
    masks = labels_from_values(array, f"input '{meta.input_name}'")
    batched = masks.ndim == 3
    prepared = [state.batcher.gen.prepare(m) for m in (masks if batched else masks[np.newaxis])]
    return InferRequest(prepared, batched, _binary_output(doc, meta), _request_id(doc))


def _check_batch_pixels(shape: tuple[int, ...], meta: ModelMeta, limits: Limits) -> None:
    """A request's masks, as sent and as resized for the model, hold at most max_pixels pixels
    together (one /v1 mask may hold that many): N is bounded, not only each mask."""
    count = shape[0] if len(shape) == 3 else 1
    per_mask = max(shape[-2] * shape[-1], meta.input_size[0] * meta.input_size[1])
    if count * per_mask > limits.max_pixels:
        raise RequestRejected(
            f"input '{meta.input_name}' | {count} masks of {per_mask:,} pixels each (at the "
            f"model's size or larger), over the limit of {limits.max_pixels:,} per request. "
            "Expected a smaller batch. Hint: split it over several requests.",
            413,
            "too_large",
        )


def _split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """(JSON header, binary tensor data) of a body, split at Inference-Header-Content-Length."""
    size = len(body)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise RequestRejected(
                f"{HEADER_LENGTH} | {header_length!r}. Expected the byte length of the JSON "
                f"header, at most the body's {len(body)} bytes."
            )
        size = int(header_length)
    try:
        doc = json.loads(body[:size])
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise RequestRejected(f"infer request | not valid JSON ({one_line(err)[:120]}).") from err
    if not isinstance(doc, dict):
        raise RequestRejected('infer request | not a JSON object. Expected {"inputs": [...]}.')
    return doc, body[size:]


def _tensor(spec: dict[str, Any], binary: bytes, name: str, limits: Limits) -> np.ndarray:
    """The input tensor of one request input: checked name, datatype, shape, size, data."""
    subject = f"input '{spec.get('name')}'"
    if spec.get("name") != name:
        raise RequestRejected(f"{subject} | not an input of this model. Expected '{name}'.")
    datatype = spec.get("datatype")
    if datatype not in DTYPES:
        raise RequestRejected(
            f"{subject} | datatype {datatype!r}. Expected UINT8 (or another of "
            f"{', '.join(DTYPES)} holding labels 0..3)."
        )
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) not in (2, 3)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise RequestRejected(f"{subject} | shape {shape!r}. Expected [N, H, W] or [H, W].")
    check_pixels(subject, tuple(shape[-2:]), limits.max_pixels)
    count = int(np.prod(shape))
    dtype = np.dtype(DTYPES[datatype])
    params = _parameters(spec, subject)
    if "binary_data_size" in params:
        return _binary_tensor(binary, params["binary_data_size"], count, dtype, subject, shape)
    if binary:
        raise RequestRejected(
            f"{subject} | binary data after the JSON header, but no binary_data_size. "
            'Expected "parameters": {"binary_data_size": bytes} on the input.'
        )
    return _json_tensor(spec.get("data"), count, subject, shape)


def _binary_tensor(
    binary: bytes, size: object, count: int, dtype: np.dtype[Any], subject: str, shape: list[int]
) -> np.ndarray:
    if size != len(binary) or size != count * dtype.itemsize:
        raise RequestRejected(
            f"{subject} | binary_data_size {size!r} with {len(binary)} bytes after the header. "
            f"Expected {count * dtype.itemsize} bytes for shape {shape} of {dtype.name}."
        )
    return np.frombuffer(binary, dtype=dtype).reshape(shape)


def _json_tensor(data: object, count: int, subject: str, shape: list[int]) -> np.ndarray:
    if not isinstance(data, list):
        raise RequestRejected(f'{subject} | no "data" list. Expected {count} label values.')
    try:
        array = np.asarray(data)
    except ValueError as err:  # ragged nesting
        raise RequestRejected(f'{subject} | ragged "data". Expected {count} label values.') from err
    if array.dtype == object or array.size != count:
        raise RequestRejected(
            f'{subject} | "data" holds {array.size} values. Expected {count} label values for '
            f"shape {shape} (flat or nested row-major)."
        )
    return array.reshape(shape)


def _binary_output(doc: dict[str, Any], meta: ModelMeta) -> bool:
    """Whether the output goes as binary data: per requested output, else the request's
    `binary_data_output` parameter (tritonclient sends that when no outputs are named)."""
    params = _parameters(doc, "infer request")
    wanted = doc.get("outputs")
    if wanted is None:
        return bool(params.get("binary_data_output", False))
    listed = wanted if isinstance(wanted, list) else [wanted]
    names = [o.get("name") if isinstance(o, dict) else o for o in listed]
    if (
        not isinstance(wanted, list)
        or names != [meta.output_name]
        or not isinstance(wanted[0], dict)
    ):
        raise RequestRejected(
            f'outputs {names!r} | not this model\'s. Expected [{{"name": '
            f'"{meta.output_name}"}}] or no "outputs".'
        )
    out_params = _parameters(wanted[0], f"output '{meta.output_name}'")
    if "classification" in out_params:
        raise RequestRejected("output parameter 'classification' | not supported by this model.")
    return bool(out_params.get("binary_data", params.get("binary_data_output", False)))


def _parameters(item: dict[str, Any], subject: str) -> dict[str, Any]:
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestRejected(f'{subject} | "parameters" is not a JSON object.')
    return params


def _request_id(doc: dict[str, Any]) -> str | None:
    value = doc.get("id")
    return None if value is None else str(value)


# -- response ------------------------------------------------------------------------------------
def infer_response(
    meta: ModelMeta, name: str, frames: list[np.ndarray], parsed: InferRequest
) -> tuple[bytes, int | None]:
    """(body, JSON header length or None for a JSON-only body) of an infer response."""
    datatype, dims = output_type(meta)
    stacked = np.stack(frames)
    values = stacked if datatype == "UINT8" else stacked.astype(np.float32) / np.float32(255.0)
    shape = [len(frames), *dims] if parsed.batched else dims
    values = values.reshape(shape)
    output: dict[str, Any] = {"name": meta.output_name, "datatype": datatype, "shape": shape}
    doc: dict[str, Any] = {"model_name": name, "model_version": VERSION, "outputs": [output]}
    if parsed.request_id is not None:
        doc["id"] = parsed.request_id
    if not parsed.binary:
        output["data"] = values.ravel().tolist()
        return json.dumps(doc).encode(), None
    raw = np.ascontiguousarray(values).tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = json.dumps(doc).encode()
    return header + raw, len(header)
