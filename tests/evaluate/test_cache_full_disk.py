"""`evaluate --cache` on a full disk (issue #22): the cache write fails in one line and the
evaluation goes on without caching, instead of a crash in torch's writer that loses it."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from echogen_trt import fileio
from echogen_trt.errors import OutputError
from echogen_trt.evaluate.protocol import EvalConfig, obtain_segmenter
from echogen_trt.evaluate.segment import SegmenterSettings, save_segmenter, train_segmenter

SETTINGS = SegmenterSettings(width=2, depth=2, iters=2, batch_size=2)


class _Full:
    """A file on a disk that fills up after the first 1000 bytes."""

    def __init__(self, fd: int) -> None:
        os.close(fd)
        self.room = 1000

    def __enter__(self) -> _Full:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= size
        return size

    def flush(self) -> None:
        return None


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileio, "_open_temp", _Full)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.random((4, 16, 16), dtype=np.float32)
    return images, (images * 4).astype(np.uint8).clip(0, 3)


def test_saving_a_segmenter_on_a_full_disk_is_one_line(tmp_path: Path, full_disk: None) -> None:
    torch.set_num_threads(1)
    images, masks = _data()
    model = train_segmenter(images, masks, SETTINGS, seed=1)
    with pytest.raises(OutputError, match=r"j\.pt \| cannot be written \(No space left"):
        save_segmenter(model, SETTINGS, tmp_path / "j.pt", {})
    assert list(tmp_path.iterdir()) == []


def test_a_full_cache_disk_does_not_lose_the_evaluation(tmp_path: Path, full_disk: None) -> None:
    torch.set_num_threads(1)
    images, masks = _data()
    cfg = EvalConfig(segmenter=SETTINGS, device="cpu")
    model, info = obtain_segmenter("real", images, masks, cfg, {"k": 1}, tmp_path, False)
    assert model is not None and info["cache"].startswith("trained (not cached")
