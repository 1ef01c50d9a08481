"""Atomic writes: whole file or nothing, and ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from echogen_trt.fileio import atomic_write, write_bytes_atomic


def test_write_replaces_target_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "sub" / "model.onnx"
    write_bytes_atomic(target, b"first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


def test_failure_mid_write_keeps_the_old_file(tmp_path) -> None:
    target = tmp_path / "frame.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["frame.png"]


def test_files_get_the_umask_not_0600(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "x.engine", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
