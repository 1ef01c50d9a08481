"""Atomic writes: whole file or nothing, and ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from echogen_trt.errors import OutputError
from echogen_trt.fileio import (
    atomic_write,
    ensure_dir,
    remove_stale_temps,
    show_path,
    write_bytes_atomic,
)


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


# -- what the file system refuses: one line naming the path, nothing half-written ---------------
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    from fakes.full_disk import fill_disk

    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    fill_disk(monkeypatch, room=10)
    with pytest.raises(OutputError) as info:
        write_bytes_atomic(target, b"x" * 1000)
    message = str(info.value)
    assert message.startswith(f"output {target} | cannot be written (No space left on device)")
    assert "Hint: free space" in message and "\n" not in message
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_output_through_a_file_or_a_dangling_symlink(tmp_path) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(
        OutputError, match=r"file\.png/m\.onnx \| goes through .*file\.png, which is a file"
    ):
        write_bytes_atomic(tmp_path / "file.png" / "m.onnx", b"data")
    (tmp_path / "link.onnx").symlink_to(tmp_path / "gone" / "x.onnx")
    with pytest.raises(
        OutputError, match=r"link\.onnx \| is a dangling symlink \(to .*gone/x\.onnx\)"
    ):
        write_bytes_atomic(tmp_path / "link.onnx", b"data")
    assert (tmp_path / "link.onnx").is_symlink() and not (tmp_path / "gone").exists()


def test_output_folders_that_cannot_be_created(tmp_path, monkeypatch) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"--out .*file\.png/frames \| goes through"):
        ensure_dir(tmp_path / "file.png" / "frames")
    (tmp_path / "dl").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match=r"--out .*dl \| is a dangling symlink"):
        ensure_dir(tmp_path / "dl")
    # an unwritable parent (chmod means nothing to root, so the check is faked there)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(
        OutputError, match=r"--out .*ro/x \| cannot be written \(Permission denied\)"
    ):
        ensure_dir(tmp_path / "ro" / "x")
    assert not (tmp_path / "ro").exists()


def test_stale_temps_are_removed_but_live_ones_kept(tmp_path) -> None:
    fcntl = pytest.importorskip("fcntl")
    stale = tmp_path / ".frame.png.0123456789ab.tmp"
    stale.write_bytes(b"half a frame of a killed run")
    other = tmp_path / ".other.png.0123456789ab.tmp"
    other.write_bytes(b"not one of ours to clean here")
    user = tmp_path / ".frame.png.notours.tmp"
    user.write_bytes(b"a user's file")
    live = tmp_path / ".frame.png.ba9876543210.tmp"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is writing it
    try:
        assert remove_stale_temps(tmp_path, ["frame.png"]) == [stale]
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, user.name, live.name])


def test_show_path_quotes_control_characters() -> None:
    assert show_path("a b/cœur.png") == "a b/cœur.png"
    assert show_path("bad\nname.png") == "'bad\\nname.png'"
