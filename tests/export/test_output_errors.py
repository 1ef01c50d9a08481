"""`export` and `build-engine` outputs under careless use (issue 16): a full disk, a dangling
symlink, a path through a file, a timing cache that is the ONNX input. One line, exit 1, and
nothing half-written under a real name."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError, OutputError
from fakes.full_disk import fill_disk


def export(*args: object):
    return CliRunner().invoke(cli, ["export", *map(str, args), "--no-verify"])


def test_export_on_a_full_disk_is_one_line_and_writes_nothing(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out" / "model.onnx"
    fill_disk(monkeypatch, room=1000)
    result = export(tiny_checkpoint, "--out", out)
    assert result.exit_code == 1 and isinstance(result.exception, OutputError)
    message = str(result.exception)
    assert message.startswith(f"output {out} | cannot be written (No space left on device)")
    assert "\n" not in message
    assert list((tmp_path / "out").iterdir()) == []


def test_export_through_a_file_or_a_dangling_symlink(tiny_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    (tmp_path / "link.onnx").symlink_to(tmp_path / "gone" / "x.onnx")
    cases = {
        tmp_path / "file.png" / "m.onnx": "goes through",
        tmp_path / "link.onnx": "is a dangling symlink",
    }
    for out, problem in cases.items():
        result = export(tiny_checkpoint, "--out", out)
        assert result.exit_code == 1 and isinstance(result.exception, OutputError), result.output
        assert f"output {out} | {problem}" in str(result.exception)
    assert (tmp_path / "link.onnx").is_symlink() and (tmp_path / "file.png").read_bytes() == b"x"


def test_build_engine_refuses_a_timing_cache_that_is_an_input_or_the_engine(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"the user's model")
    for cache, role in ((onnx, "ONNX input"), (tmp_path / "model.engine", "engine output")):
        result = CliRunner().invoke(cli, ["build-engine", str(onnx), "--timing-cache", str(cache)])
        assert result.exit_code == 1 and isinstance(result.exception, ConfigError)
        assert f"--timing-cache {cache} | is also the {role}" in str(result.exception)
    assert onnx.read_bytes() == b"the user's model"
