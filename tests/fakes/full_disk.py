"""A full disk without a full disk: every file `fileio.atomic_write` opens accepts `room` bytes,
writes them, then fails with ENOSPC the way a real write on a full file system does."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest

from echogen_trt import fileio


class FullDiskFile:
    """Wraps the real handle: partial write, then OSError(ENOSPC)."""

    def __init__(self, handle: Any, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data: bytes) -> int:
        data = bytes(data)
        if len(data) > self.room:
            self.handle.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return int(self.handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch, room: int = 100) -> None:
    """From now on, atomic writes run out of space after `room` bytes per file."""
    real = fileio._open_temp
    monkeypatch.setattr(fileio, "_open_temp", lambda fd: FullDiskFile(real(fd), room))
