"""What a request carries, turned into a mask - or into a one-line 4xx reason.

A mask comes as a raw body (PNG/BMP/TIFF or .npy told by its magic bytes, whatever the content
type among image/*, application/octet-stream and application/x-npy), as a multipart upload (the
first file field), or as JSON `{"mask": [[0, 1, ...], ...]}`. Decoding and label checks are
`runtime.io`'s, so the service accepts and refuses exactly what `generate` does, with the same
messages.
"""

from __future__ import annotations

import json

import numpy as np

from echogen_trt.errors import EchogenError, InputMismatch
from echogen_trt.runtime.io import MaskTooLarge, check_pixels, labels_from_values, mask_from_bytes
from echogen_trt.serve.batcher import Closed, Overloaded
from echogen_trt.serve.limits import ServeLimits

LONGEST_WORD = 80  # characters of one word (a query value, a path) an error message repeats
RAW_TYPES = ("image/", "application/octet-stream", "application/x-npy")
OUTPUT_FORMATS = {"png": "image/png", "npy": "application/x-npy"}


class RequestRejected(EchogenError):
    """A request the service refuses; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def refusal_of(err: EchogenError) -> tuple[int, str]:
    """(HTTP status, metrics reason) for a user error: 413 too large, 503 busy or stopping,
    the status a RequestRejected carries, else 400."""
    if isinstance(err, RequestRejected):
        return err.status, err.reason
    if isinstance(err, MaskTooLarge):
        return 413, "too_large"
    if isinstance(err, Overloaded):
        return 503, "queue_full"
    if isinstance(err, Closed):
        return 503, "stopping"
    return 400, "bad_mask" if isinstance(err, InputMismatch) else "bad_request"


def one_line(err: BaseException | str) -> str:
    """The message on one line (a reason in a JSON body or a log line), each word cut to
    LONGEST_WORD characters: a 100 kB query value is not echoed back in full."""
    words = str(err).split()
    return " ".join(w if len(w) <= LONGEST_WORD else w[:LONGEST_WORD] + "..." for w in words)


def too_large(size: int, limit: int) -> RequestRejected:
    return RequestRejected(
        f"request body | {size:,} bytes or more, over the limit of {limit:,}. Expected a "
        "smaller mask. Hint: send it as PNG, or raise --max-body-mb.",
        413,
        "too_large",
    )


def mask_from_body(
    body: bytes, content_type: str, limits: ServeLimits, source: str = "request body"
) -> np.ndarray:
    """uint8 (H, W) labels from a raw or JSON body; RequestRejected/InputMismatch otherwise."""
    if not body:
        raise RequestRejected(
            f"{source} | empty. Expected a mask: PNG or .npy bytes, a multipart upload, or "
            'JSON {"mask": [[...]]}.'
        )
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        return mask_from_json(body, limits, source)
    if kind.startswith(RAW_TYPES) or kind == "":
        return mask_from_bytes(body, source, max_pixels=limits.max_pixels)
    raise RequestRejected(
        f"{source} | content type {kind!r}. Expected image/png, application/x-npy, "
        "application/octet-stream, application/json or multipart/form-data.",
        415,
        "content_type",
    )


def mask_from_json(body: bytes, limits: ServeLimits, source: str = "request body") -> np.ndarray:
    """`{"mask": [[...], ...]}` (or a bare 2-D list) as uint8 labels, checked like a file."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # [[[[...]]]] too deep
        raise RequestRejected(f"{source} | not valid JSON ({one_line(err)[:120]}).") from err
    rows = doc.get("mask") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise RequestRejected(
            f'{source} | JSON without a 2-D "mask". Expected {{"mask": [[0, 1, ...], ...]}}.'
        )
    height, width = len(rows), max(len(r) for r in rows)
    check_pixels(source, (height, width), limits.max_pixels)
    try:
        array = np.array(rows)
    except ValueError as err:  # ragged rows
        raise InputMismatch(
            f"{source} | rows of different lengths. Expected a rectangular (H, W) mask."
        ) from err
    if array.ndim != 2 or 0 in array.shape or array.dtype == object:
        raise InputMismatch(
            f"{source} | JSON mask of shape {array.shape}. Expected a rectangular (H, W) list "
            "of integer labels."
        )
    return labels_from_values(array, source)


def output_format(query: str | None, accept: str) -> str:
    """ "png" or "npy", from ?format= or else the Accept header."""
    if query is not None:
        if query not in OUTPUT_FORMATS:
            raise RequestRejected(
                f"format {query!r} | unknown. Expected one of {', '.join(OUTPUT_FORMATS)}."
            )
        return query
    return "npy" if "application/x-npy" in accept else "png"
