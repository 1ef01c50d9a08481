"""Atomic file writes: every artefact (frame, checkpoint, ONNX file, engine, provenance) is
written to a temporary file beside its target and moved into place with `os.replace`, so an
interrupted run never leaves half a file. Files get the user's umask (0o666 & ~umask), not
mkstemp's 0o600, so a model or engine can be shared like any other file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from echogen_trt.errors import ConfigError


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; on success it replaces `path`,
    on any exception it is removed and `path` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically (reports, JSON summaries, state files)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (checkpoint and ONNX provenance hashes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_output_path(
    out: str | os.PathLike[str],
    *,
    inputs: Sequence[str | os.PathLike[str]],
    suffixes: Sequence[str],
    what: str,
) -> Path:
    """Refuse an output that would overwrite one of `inputs` or lacks an expected suffix, before
    any work: `export run/best.pt --out run/best.pt` must never replace the weights."""
    target = Path(out)
    if not any(target.name.endswith(s) for s in suffixes):
        raise ConfigError(
            f"{what} {target} | unexpected file name. Expected a name ending in "
            f"{' or '.join(suffixes)}. Hint: e.g. --out model{suffixes[0]}"
        )
    for source in inputs:
        if target.resolve() == Path(source).resolve():
            raise ConfigError(
                f"{what} {target} | is the input file itself; writing it would destroy the input. "
                "Hint: choose another --out."
            )
    return target
