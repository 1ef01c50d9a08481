"""`echogen-trt serve` on the command line: defaults and a model that cannot be served."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from echogen_trt.cli import cli


def test_help_shows_the_local_default_and_the_batching_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for text in (
        "127.0.0.1", "--max-batch", "--max-delay-ms", "0.0.0.0", "--max-body-mb", "--allowed-host",
        "--cors-origin", "--graceful-timeout-s", "--header-timeout-s", "--max-connections",
    ):  # fmt: skip
        assert text in result.output


def test_a_missing_model_is_one_line_and_exit_1(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "echogen_trt", "serve", "--model", str(tmp_path / "no.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no.onnx" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
