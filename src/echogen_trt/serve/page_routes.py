"""The routes the drawing page needs beyond generation: its labels, loading a mask file, and a
cine of the user's own mask.

- GET /v1/labels: label names, brush names, colours and which labels the model uses.
- POST /v1/mask: a mask file in any form `generate` reads (PNG/BMP/TIFF, .npy, CAMUS
  `_gt.nii.gz` / `.nii` / `.mhd` with its `.raw`), optionally with the real image beside it;
  answers the labels as a greyscale PNG (x85) and the image as a PNG, so the page can show the
  real frame next to the generated one. Decoding is `runtime.io.read_mask`'s, messages included.
- POST /v1/cine: a drawn ED mask in, its contraction (`drawn_cine`) through the model out, as an
  animated GIF or MP4 made by the same code as `generate`'s sequence preview (`runtime.cine`), a
  zip of frames and masks, or a strip PNG (mask | frame per row block) for the page to play.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from echogen_trt.errors import InputMismatch
from echogen_trt.fileio import show_path
from echogen_trt.runtime import cine as runtime_cine
from echogen_trt.runtime.io import (
    SCALES,
    check_pixels,
    encode_frame,
    image_size,
    mask_from_bytes,
    mask_suffix,
    read_mask,
)
from echogen_trt.runtime.io import _read_medical as read_checked_medical  # its size check too
from echogen_trt.runtime.model_tensors import resize_mask
from echogen_trt.serve import drawn_cine
from echogen_trt.serve.batcher import Closed
from echogen_trt.serve.palette import labels_info
from echogen_trt.serve.requests import RequestRejected, mask_from_body, one_line

PATHS = ("/v1/labels", "/v1/mask", "/v1/cine")
MEDICAL = (".mhd", ".nii", ".nii.gz")
CINE_FORMATS = {
    "gif": "image/gif",
    "mp4": "video/mp4",
    "zip": "application/zip",
    "strip": "image/png",
}
MAX_UPLOAD_FILES = 4  # a mask, its .raw, an image, its .raw
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Upload:
    field: str
    name: str
    data: bytes


def routes() -> list[Route]:
    """The page's extra routes; the app registers them beside its own."""
    return [
        Route("/v1/labels", labels),
        Route("/v1/mask", load_mask, methods=["POST"]),
        Route("/v1/cine", cine, methods=["POST"]),
    ]


async def labels(request: Request) -> Response:
    meta = request.app.state.serve.meta
    return JSONResponse(labels_info(tuple(meta.kept_labels), meta.experiment))


# -- loading a mask file --------------------------------------------------------------------------
async def load_mask(request: Request) -> Response:
    state = request.app.state.serve
    size = tuple(state.meta.input_size)
    deadline = time.monotonic() + state.limits.request_timeout_s
    async with state.upload_slot(deadline):  # bodies and decoding cost memory: bounded as ever
        uploads = await _uploads(request)
        answer = await run_in_threadpool(decode_uploads, uploads, size, state.limits.max_pixels)
        del uploads
    return JSONResponse(answer)


async def _uploads(request: Request) -> list[Upload]:
    kind = request.headers.get("content-type", "")
    if not kind.lower().startswith("multipart/form-data"):
        return [Upload("mask", "request body", await request.body())]
    try:
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES + 4)
    except HTTPException as err:
        raise RequestRejected(
            f"multipart request | {one_line(err.detail)}. Expected a mask file, and optionally "
            f"the image beside it (at most {MAX_UPLOAD_FILES} files)."
        ) from err
    try:
        found = [
            Upload(field, _safe_name(value.filename or "upload"), await value.read())
            for field, value in form.multi_items()
            if isinstance(value, UploadFile)
        ]
    finally:
        await form.close()
    if not found:
        raise RequestRejected("multipart request | no file in it. Expected a mask file.")
    return found


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _SAFE_NAME.sub("_", base).lstrip(".") or "upload"


def _pick(uploads: list[Upload]) -> tuple[Upload, Upload | None]:
    """(mask, image or None): by field name ("mask", "image"), else `_gt` in a file's name marks
    the mask and another image-like file is the image; `.raw` files are data beside a header."""
    headers = [u for u in uploads if not u.name.lower().endswith(".raw")]
    by_field = {u.field: u for u in headers}
    mask = by_field.get("mask") or next(
        (u for u in headers if "_gt" in u.name.lower()), headers[0] if headers else None
    )
    if mask is None:
        raise RequestRejected("upload | only .raw files. Expected the .mhd header with its .raw.")
    rest = [u for u in headers if u is not mask]
    image = by_field.get("image") if by_field.get("image") is not mask else None
    return mask, image or (rest[0] if rest else None)


def decode_uploads(
    uploads: list[Upload], model_size: tuple[int, int], max_pixels: int
) -> dict[str, Any]:
    """The page's answer for uploaded files, PNGs in base64: the labels (x85) at the file's size
    and at the model's (resized as generation resizes them), the real image if one came."""
    mask_file, image_file = _pick(uploads)
    with tempfile.TemporaryDirectory(prefix="echogen-upload-") as folder:
        mask = _read_upload_mask(mask_file, uploads, Path(folder), max_pixels)
        image = None
        if image_file is not None:
            image = _read_upload_image(image_file, uploads, Path(folder), mask.shape, max_pixels)
    return {
        "name": mask_file.name,
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "mask": _b64png(mask * np.uint8(SCALES[0])),
        "model_mask": _b64png(resize_mask(mask, model_size) * np.uint8(SCALES[0])),
        "image": None if image is None else _b64png(image),
        "image_name": None if image_file is None else image_file.name,
    }


def _b64png(array: np.ndarray) -> str:
    return base64.b64encode(encode_frame("x.png", array)).decode("ascii")


def _stage(upload: Upload, uploads: list[Upload], folder: Path) -> Path:
    """Write a medical file and every other upload (its .raw) into `folder`; its path."""
    for other in uploads:
        (folder / other.name).write_bytes(other.data)
    path = folder / upload.name
    if mask_suffix(path) == ".mhd":
        match = re.search(rb"ElementDataFile\s*=\s*(\S+)", upload.data)
        data_file = match.group(1).decode("latin-1") if match else ""
        uploaded = {u.name for u in uploads}
        if data_file != "LOCAL" and data_file not in uploaded:  # never a path to elsewhere
            raise RequestRejected(
                f"upload {upload.name!r} | a MetaImage header without its data file "
                f"{data_file[:80]!r}. Expected the .mhd and its .raw together (the header naming "
                "it without a folder). Hint: select or drop both files at once."
            )
    return path


def _renamed(err: InputMismatch, path: Path, name: str) -> InputMismatch:
    """The reader's message with the temporary path replaced by the uploaded file's name."""
    text = str(err).replace(show_path(path), f"upload {name!r}").replace(str(path), name)
    return type(err)(text)  # MaskTooLarge stays a 413


def _read_upload_mask(
    upload: Upload, uploads: list[Upload], folder: Path, max_pixels: int
) -> np.ndarray:
    if mask_suffix(upload.name) not in MEDICAL:
        return mask_from_bytes(upload.data, f"upload {upload.name!r}", max_pixels=max_pixels)
    path = _stage(upload, uploads, folder)
    try:
        return read_mask(path, max_pixels=max_pixels)
    except InputMismatch as err:
        raise _renamed(err, path, upload.name) from err


def _read_upload_image(
    upload: Upload, uploads: list[Upload], folder: Path, shape: tuple[int, ...], max_pixels: int
) -> np.ndarray:
    """The real image as uint8 grey at the mask's size (stretched to 0..255 when it is not
    8-bit)."""
    source = f"upload {upload.name!r}"
    try:
        if mask_suffix(upload.name) in MEDICAL:
            path = _stage(upload, uploads, folder)
            array = np.squeeze(read_checked_medical(path, mask_suffix(path), max_pixels))
        else:
            size = image_size(upload.data)
            if size is not None:
                check_pixels(source, size, max_pixels)
            decoded = cv2.imdecode(np.frombuffer(upload.data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if decoded is None:
                raise InputMismatch(f"{source} | not a decodable image. Expected PNG or JPEG.")
            array = decoded
    except RequestRejected:
        raise
    except InputMismatch as err:
        raise _renamed(err, folder / upload.name, upload.name) from err
    except Exception as err:  # the medical readers raise all sorts
        raise InputMismatch(
            f"{source} | cannot be read ({type(err).__name__}: {str(err).strip()[:160]}). "
            "Expected the image beside the mask (.nii.gz, .mhd + .raw, PNG or JPEG)."
        ) from err
    if array.ndim != 2:
        raise InputMismatch(
            f"{source} | image of shape {tuple(array.shape)}. Expected one 2-D frame "
            "(an ED or ES image, not a sequence)."
        )
    if array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        array = np.uint8(np.clip((array - low) * (255.0 / max(high - low, 1e-9)), 0, 255))
    if array.shape != shape[:2]:
        array = cv2.resize(array, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(array)


# -- the cine of a drawn mask -------------------------------------------------------------------
def _number(query: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also nan
        raise RequestRejected(f"cine {name} | {text!r}. Expected a number in [{low:g}, {high:g}].")
    return value


async def cine(request: Request) -> Response:
    state = request.app.state.serve
    query = dict(request.query_params)
    fmt = query.get("format", "gif")
    if fmt not in CINE_FORMATS:
        raise RequestRejected(f"cine format {fmt!r} | unknown. Expected {', '.join(CINE_FORMATS)}.")
    if fmt == "gif" and not runtime_cine.can_write_gif():
        raise RequestRejected(
            "cine format 'gif' | this OpenCV cannot write animations (4.11+ can). "
            "Expected format=mp4 or zip here. Hint: pip install -U opencv-python-headless."
        )
    n = int(_number(query, "frames", 16, *drawn_cine.FRAMES_RANGE))
    ef = _number(query, "ef", 0.55, *drawn_cine.EF_RANGE)
    fps = _number(query, "fps", runtime_cine.PREVIEW_FPS, 1, 60)
    overlay = query.get("overlay", "0") in ("1", "true")
    kind = request.headers.get("content-type", "")
    meta = state.meta
    deadline = time.monotonic() + state.limits.request_timeout_s
    if not state.batcher.ready:
        raise Closed("server | not serving (starting or stopping). Hint: retry shortly.")

    def masks_of(body: bytes) -> tuple[np.ndarray, list[np.ndarray]]:
        ed = resize_mask(mask_from_body(body, kind, state.limits), meta.input_size)
        masks = drawn_cine.sequence(ed, n, ef)
        return masks, [state.batcher.gen.prepare(m) for m in masks]  # as /v1/generate

    async with state.upload_slot(deadline):  # the same limits as /v1/generate
        masks, prepared = await run_in_threadpool(masks_of, await request.body())
    # one request per frame, batched by the worker; each gives up at the request's deadline
    frames = list(await asyncio.gather(*(state.frame(p, deadline) for p in prepared)))
    async with state.upload_slot(deadline):
        data = await run_in_threadpool(encode_cine, fmt, frames, masks, fps, overlay)
    return Response(data, media_type=CINE_FORMATS[fmt])


def encode_cine(
    fmt: str, frames: list[np.ndarray], masks: np.ndarray, fps: float, overlay: bool
) -> bytes:
    """The cine in `fmt`: GIF/MP4 by `generate`'s preview code, a zip, or the page's strip."""
    if fmt == "strip":
        rows = [np.hstack([m * np.uint8(SCALES[0]), f]) for m, f in zip(masks, frames, strict=True)]
        return encode_frame("strip.png", np.vstack(rows))
    if fmt == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for k, (mask, frame) in enumerate(zip(masks, frames, strict=True)):
                archive.writestr(f"frame_{k:03d}.png", encode_frame("f.png", frame))
                archive.writestr(
                    f"mask_{k:03d}.png", encode_frame("m.png", mask * np.uint8(SCALES[0]))
                )
        return buffer.getvalue()
    loop = runtime_cine.preview_frames(frames, masks if overlay else None)
    if fmt == "gif":
        return runtime_cine.encode_gif(loop, fps)
    try:
        return runtime_cine.encode_mp4(loop, fps)
    except OSError as err:
        raise RequestRejected(
            f"cine format 'mp4' | {one_line(err)}. Expected an OpenCV with an MP4 codec. "
            "Hint: use format=gif or zip."
        ) from err
