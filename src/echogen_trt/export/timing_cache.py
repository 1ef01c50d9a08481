"""The builder's persistent timing cache (`--timing-cache`): loaded if present, saved after.

A cache from another TensorRT version or GPU is not an error: TensorRT refuses it, and the build
starts a fresh one (logged), which then replaces the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from echogen_trt.fileio import write_bytes_atomic

if TYPE_CHECKING:
    import tensorrt as trt_t

log = logging.getLogger(__name__)


def attach_timing_cache(config: trt_t.IBuilderConfig, path: str | None) -> None:
    """Give `config` the cache stored at `path` (or an empty one)."""
    data = Path(path).read_bytes() if path and Path(path).is_file() else b""
    cache: trt_t.ITimingCache | None = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s is from another TensorRT or GPU: starting a fresh one", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    elif data:
        log.info("timing cache %s loaded (%d bytes)", path, len(data))


def save_timing_cache(config: trt_t.IBuilderConfig, path: str) -> None:
    """Write the cache `config` holds after a build to `path`, atomically."""
    write_bytes_atomic(path, bytes(memoryview(config.get_timing_cache().serialize())))
