"""`synth` used carelessly (issue #22): two runs into one folder, a --preview with no image
suffix. Each is one line before anything is written, not a traceback after."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from click.testing import CliRunner

from echogen_trt.cli import cli
from echogen_trt.errors import EchogenError

QUICK = ("--patients", "1", "--no-sequence", "--views", "4CH")


def test_a_second_synth_into_a_folder_being_written_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running synth holds
    try:
        result = CliRunner().invoke(cli, ["synth", "--out", str(out), *QUICK])
    finally:
        os.close(fd)
    assert result.exit_code == 1 and isinstance(result.exception, EchogenError), result.output
    assert "another run is writing into it now" in str(result.exception)
    assert list(out.iterdir()) == []
    again = CliRunner().invoke(cli, ["synth", "--out", str(out), *QUICK])
    assert again.exit_code == 0, again.output


def test_preview_without_an_image_suffix_is_refused_before_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = CliRunner().invoke(cli, ["synth", "--out", str(out), *QUICK, "--preview",
                                      str(tmp_path / "sheet")])  # fmt: skip
    assert result.exit_code == 1 and isinstance(result.exception, EchogenError), result.output
    assert "--preview" in str(result.exception) and "no image suffix" in str(result.exception)
    assert not out.exists()
