"""What careless and hostile use does to `generate`: 16-bit scaled masks, symlink loops, an --out
among the inputs, unreadable folders, decompression bombs, running out of memory, leftovers of
a killed run, odd file names and --out paths that cannot be created (issue 16)."""

from __future__ import annotations

import errno
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result
from runtime_helpers import labels_mask, write_png

from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError, InputMismatch, OutputError
from echogen_trt.runtime import io as rio
from echogen_trt.runtime import pipeline


def generate(*args: Any) -> Result:
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


# -- 1. scaled labels at any bit depth -------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize(
    ("dtype", "scale"), [(np.uint8, 85), (np.uint16, 85), (np.uint16, 21845), (np.uint16, 1)]
)
def test_scaled_labels_are_read_at_any_bit_depth(
    tmp_path: Path, suffix: str, dtype: type, scale: int
) -> None:
    labels = labels_mask((40, 48))
    path = tmp_path / f"m{suffix}"
    ok, data = cv2.imencode(suffix, labels.astype(dtype) * scale)
    assert ok
    path.write_bytes(data.tobytes())
    assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED).dtype == dtype
    np.testing.assert_array_equal(rio.read_mask(path), labels)


def test_mixed_scalings_are_still_refused() -> None:
    with pytest.raises(InputMismatch, match=r"mask values \{0, 85, 21845\}.*x85.*x21845"):
        rio.labels_from_values(np.array([[0, 85, 21845]], np.uint16))


# -- 3. globs through symlink loops ----------------------------------------------------------
def test_recursive_glob_through_two_symlink_loops_ends(tmp_path: Path) -> None:
    write_png(tmp_path / "loop" / "d" / "a.png", labels_mask((16, 16)))
    write_png(tmp_path / "loop" / "top.png", labels_mask((16, 16)))
    (tmp_path / "loop" / "d" / "l1").symlink_to("..")
    (tmp_path / "loop" / "d" / "l2").symlink_to("..")
    code = (
        "from echogen_trt.runtime.job_plan import collect_inputs\n"
        "items, failed = collect_inputs(['loop/**/*.png'])\n"
        "print(sorted(str(i.rel) for i in items), failed)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )  # glob.glob never ends here: a subprocess, so a regression fails instead of hanging
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['d/a.png', 'top.png'] []"


# -- 4. --out among the inputs ---------------------------------------------------------------
def test_out_inside_the_inputs_holding_masks_is_refused(
    tmp_path: Path, models: SimpleNamespace
) -> None:
    write_png(tmp_path / "in" / "a.png", labels_mask((40, 40)))
    write_png(tmp_path / "in" / "sub" / "b.png", labels_mask((40, 40), 1))
    result = generate(tmp_path / "in", "-r", "--out", tmp_path / "in" / "sub", "-m", models.onnx)
    assert result.exit_code == 1 and isinstance(result.exception, ConfigError)
    assert "lies among the inputs and already holds 1 mask file(s)" in str(result.exception)
    assert "sub/b.png" in str(result.exception)
    assert sorted(p.name for p in (tmp_path / "in" / "sub").iterdir()) == ["b.png"]


# -- 5. unreadable folders -------------------------------------------------------------------
def test_unreadable_sub_folder_is_reported_and_fails_the_run(
    tmp_path: Path, models: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_png(tmp_path / "in" / "a.png", labels_mask((40, 40)))
    write_png(tmp_path / "in" / "locked" / "b.png", labels_mask((40, 40), 1))
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # chmod 000 means nothing to root: fake the refusal
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = generate(tmp_path / "in", "-r", "--out", tmp_path / "out", "-m", models.onnx)
    assert result.exit_code == 1, result.output
    assert "locked: folder cannot be read (Permission denied)" in result.output
    assert (tmp_path / "out" / "a.png").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_unreadable_sub_folder_for_real(tmp_path: Path, models: SimpleNamespace) -> None:
    write_png(tmp_path / "in" / "a.png", labels_mask((40, 40)))
    write_png(tmp_path / "in" / "locked" / "b.png", labels_mask((40, 40), 1))
    (tmp_path / "in" / "locked").chmod(0)
    try:
        result = generate(tmp_path / "in", "-r", "--out", tmp_path / "out", "-m", models.onnx)
    finally:
        (tmp_path / "in" / "locked").chmod(0o755)
    assert result.exit_code == 1 and "folder cannot be read" in result.output


# -- 6. decompression bombs and running out of memory ----------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid 8-bit grey PNG of zeros, compressed row by row (small file, huge image)."""
    packer = zlib.compressobj(9)
    rows = b"\0" * (width + 1) * 64
    body = b"".join(packer.compress(rows) for _ in range(height // 64))
    body += packer.compress(b"\0" * (width + 1) * (height % 64)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def bomb_headers() -> dict[str, bytes]:
    """Files claiming 30000x30000 pixels; only their headers are meant to be read."""
    png = png_of_zeros(8, 8).replace(struct.pack(">II", 8, 8), struct.pack(">II", 30000, 30000), 1)
    bmp = b"BM" + bytes(12) + struct.pack("<Iii", 40, 30000, -30000) + bytes(40)
    ifd = struct.pack("<H", 2) + struct.pack("<HHII", 256, 4, 1, 30000)
    ifd += struct.pack("<HHII", 257, 3, 1, 30000) + bytes(4)
    tif = b"II*\x00" + struct.pack("<I", 8) + ifd
    big = b"MM\x00+" + struct.pack(">HHQ", 8, 0, 16) + struct.pack(">Q", 2)
    big += struct.pack(">HHQQ", 256, 4, 1, 30000 << 32) + struct.pack(">HHQQ", 257, 16, 1, 30000)
    return {".png": png, ".bmp": bmp, ".tif": tif, ".tiff": big}


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_bomb_is_refused_from_its_header_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    path = tmp_path / f"bomb{suffix}"
    path.write_bytes(bomb_headers()[suffix])

    def imdecode(*args: object) -> None:
        raise AssertionError("decoded a file the header already refused")

    monkeypatch.setattr(rio.cv2, "imdecode", imdecode)
    with pytest.raises(InputMismatch, match=r"30000x30000 pixels \(900,000,000\), over the limit"):
        rio.read_mask(path)


def test_bomb_fails_alone_and_the_batch_goes_on(tmp_path: Path, models: SimpleNamespace) -> None:
    masks = tmp_path / "masks"
    write_png(masks / "good.png", labels_mask((40, 40)))
    (masks / "bomb.png").write_bytes(png_of_zeros(2000, 2000))  # 4 Mpx in 6 kB
    result = generate(
        masks, "--out", tmp_path / "out", "-m", models.onnx, "--size", "original", "--overlay",
        "--max-pixels", 1_000_000,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "bomb.png: 2000x2000 pixels (4,000,000), over the limit of 1,000,000" in result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["echogen-generate.json", "good.png", "good_overlay.png"]


def _out_of_memory(kind: str) -> BaseException:
    if kind == "MemoryError":
        return MemoryError()
    err = cv2.error("OpenCV(5.0.0) alloc.cpp:73: error: (-4:Insufficient memory)")
    err.code = cv2.Error.StsNoMem
    return err


@pytest.mark.parametrize("kind", ["MemoryError", "cv2.error"])
def test_out_of_memory_on_one_mask_fails_that_file_only(
    tmp_path: Path, models: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    masks = tmp_path / "masks"
    write_png(masks / "big.png", labels_mask((90, 90)))
    write_png(masks / "small.png", labels_mask((40, 40)))
    real_panel = pipeline.panel

    def panel(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.shape == (90, 90):
            raise _out_of_memory(kind)
        return real_panel(frame, mask)

    monkeypatch.setattr(pipeline, "panel", panel)
    summary = pipeline.run_generate(
        [masks], tmp_path / "out", model=models.onnx, size="original", overlay=True, progress=False
    )
    assert summary.written == 1
    assert [(Path(p).name, r.split(". ")[0]) for p, r in summary.failed] == [
        ("big.png", "out of memory writing its frame")
    ]


# -- 10. leftovers of a killed run, odd names, --out created too early -----------------------
def test_skip_existing_rerun_removes_a_killed_runs_temp_frame(
    tmp_path: Path, models: SimpleNamespace
) -> None:
    masks, out = tmp_path / "masks", tmp_path / "out"
    write_png(masks / "a.png", labels_mask((40, 40)))
    write_png(masks / "b.png", labels_mask((40, 40), 1))
    assert generate(masks, "--out", out, "-m", models.onnx).exit_code == 0
    (out / "b.png").unlink()
    stale = out / ".b.png.0123456789ab.tmp"  # what kill -9 leaves in the middle of a write
    stale.write_bytes(b"\x89PNG half a huge frame")
    (out / ".a.png.ba9876543210.tmp").write_bytes(b"\x89PNG half a rewrite of a kept frame")
    result = generate(masks, "--out", out, "-m", models.onnx, "--skip-existing")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "echogen-generate.json"]


def test_a_newline_in_a_file_name_stays_on_one_line(
    tmp_path: Path, models: SimpleNamespace
) -> None:
    masks = tmp_path / "masks"
    write_png(masks / "good.png", labels_mask((40, 40)))
    (masks / "bad\nname.png").write_bytes(b"not an image")
    result = generate(masks, "--out", tmp_path / "out", "-m", models.onnx)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    failed = lines[lines.index("failed:") + 1 :]
    assert len(failed) == 1 and "bad\\nname.png'" in failed[0]
    assert "not a decodable image" in failed[0]


def test_out_is_not_created_when_the_model_fails_to_load(tmp_path: Path) -> None:
    write_png(tmp_path / "masks" / "a.png", labels_mask((40, 40)))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    result = generate(tmp_path / "masks", "--out", tmp_path / "new" / "frames", "-m", broken)
    assert result.exit_code == 1
    assert not (tmp_path / "new").exists()


# -- 2. --out that cannot be created: one line, before the model loads ------------------------
def test_out_that_cannot_be_created_is_one_line(
    tmp_path: Path, models: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_png(tmp_path / "masks" / "a.png", labels_mask((40, 40)))
    (tmp_path / "file.png").write_bytes(b"x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    cases = {
        tmp_path / "file.png" / "frames": r"goes through .*file\.png, which is a file",
        tmp_path / "dangling": r"is a dangling symlink \(to .*nowhere\)",
    }
    for out, problem in cases.items():
        result = generate(tmp_path / "masks", "--out", out, "-m", models.onnx)
        assert result.exit_code == 1 and isinstance(result.exception, OutputError), result.output
        assert "\n" not in str(result.exception)
        assert re.search(rf"--out .* \| {problem}", str(result.exception))
    real_access = os.access  # an unwritable parent (chmod means nothing to root)
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path and real_access(p, mode))
    result = generate(tmp_path / "masks", "--out", tmp_path / "ro" / "x", "-m", models.onnx)
    assert isinstance(result.exception, OutputError)
    assert "cannot be written (Permission denied)" in str(result.exception)
