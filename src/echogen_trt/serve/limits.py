"""The service's limits and timeouts, decided once here (the CLI's options default to None).

Every number that bounds what one client can cost the server lives in `ServeLimits`, so the
README, `/v1/model` and the code agree. The memory bound: only `upload_slots` requests at a time
hold memory in proportion to their mask - reading and decoding a body, or resizing and encoding
a `size=original` frame - each at most `request_memory_bytes`; a queued request holds only its
model-size tensor (`max_queue` of them), a connection a few kB.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, fields, replace
from typing import Any

from echogen_trt.errors import ConfigError

# Worst case while decoding one mask, per pixel of `max_pixels`: 16-bit RGBA from the decoder
# (8 B), a grey plane (2 B), int64 labels for the scaled conventions (8 B), the uint8 result
# (1 B) and comparisons. Measured 20 B/px for PNG and TIFF, 14 for .npy (benchmarks/
# serve_hostile.py, "decode cost"); 24 leaves room.
DECODE_BYTES_PER_PIXEL = 24
# A JSON mask costs Python lists and an int64 array: measured 5.5 bytes per body byte.
JSON_BYTES_PER_BODY_BYTE = 6
# File descriptors kept free of connections: the model, logs, the thread pool, and the
# connections answered "busy" while the server is full.
FD_RESERVE = 96


@dataclass(frozen=True)
class ServeLimits:
    """Per-request and per-server limits of `echogen-trt serve`."""

    max_body_bytes: int = 16 * 1024 * 1024  # a 1024x1024 mask as JSON is ~3 MB; as PNG a few kB
    max_pixels: int = 2048 * 2048  # per mask; CAMUS masks are about 800x600
    upload_slots: int = 4  # requests reading or decoding a body at once; then 503 + Retry-After
    max_queue: int = 64  # masks waiting for the model; then 503 + Retry-After
    request_timeout_s: float = 30.0  # headers received -> response started, queue wait included
    header_timeout_s: float = 10.0  # a connection must send a request's headers within this
    body_timeout_s: float = 30.0  # the whole body must arrive within this
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int | None = None  # None: the open-file limit less FD_RESERVE, at most 4096
    graceful_timeout_s: float = 10.0  # on SIGTERM, requests in flight get this long to finish
    retry_after_s: int = 2  # the Retry-After of every 503

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not value > 0:
                flag = "--" + f.name.replace("_", "-")
                raise ConfigError(f"{flag} | {value}. Expected a number > 0.")

    def with_options(self, **options: Any) -> ServeLimits:
        """A copy with the options that are not None (CLI flags left unset keep the default)."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})

    @property
    def connection_limit(self) -> int:
        """Connections served at once: below the open-file limit, so accept() never fails."""
        if self.max_connections is not None:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return 4096
        return max(16, min(4096, soft - FD_RESERVE))

    @property
    def request_memory_bytes(self) -> int:
        """Worst-case memory of one request in an upload slot: its body and its decoding."""
        decoding = max(
            self.max_pixels * DECODE_BYTES_PER_PIXEL, self.max_body_bytes * JSON_BYTES_PER_BODY_BYTE
        )
        return self.max_body_bytes + decoding

    @property
    def service_memory_bytes(self) -> int:
        """Worst-case memory of all requests at once (the model, its queue of model-size
        tensors and Python come on top)."""
        return self.upload_slots * self.request_memory_bytes
