"""`echogen-trt export` end to end on a checkpoint, through the CLI group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from echogen_trt.artifacts.onnx_file import read_meta
from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError
from echogen_trt.train.checkpoint import file_sha256


def test_export_both_prints_size_time_and_reports(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(
        cli, ["export", str(tiny_checkpoint), "--out", str(out), "--precision", "both"]
    )
    assert result.exit_code == 0, result.output
    fp16 = tmp_path / "model.fp16.onnx"
    assert read_meta(out).precision == "fp32" and read_meta(fp16).precision == "fp16"
    assert read_meta(out).checkpoint_sha256 == file_sha256(tiny_checkpoint)
    lines = result.output.splitlines()
    assert any(line.startswith(f"wrote {out} (fp32, io=float, dynamic batch") for line in lines)
    assert any(line.startswith(f"wrote {fp16} (fp16") and " MB in " in line for line in lines)
    assert result.output.count("check ") == 2  # one table header per file
    assert "max abs err vs torch" in result.output and "PSNR fp16 vs torch fp32" in result.output
    assert result.output.count(": passed") == 2 and " NO" not in result.output


def test_export_json_fused_fixed_fp16(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "u8.onnx"
    args = ["export", str(tiny_checkpoint), "-o", str(out), "--precision", "fp16"]
    result = CliRunner().invoke(cli, [*args, "--fused-io", "--batch", "2", "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert (summary["precision"], summary["io"], summary["batch"]) == ("fp16", "uint8", 2)
    assert summary["size_bytes"] == out.stat().st_size and summary["opset"] == 17
    assert summary["verify"]["ok"] is True
    assert read_meta(out).io == "uint8"


def test_no_verify_skips_the_report(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    args = ["export", str(tiny_checkpoint), "-o", str(out), "--no-verify", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["verify"] is None


def test_bad_opset_is_a_user_error(tiny_checkpoint: Path, tmp_path: Path) -> None:
    args = ["export", str(tiny_checkpoint), "-o", str(tmp_path / "m.onnx"), "--opset", "8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "opset | 8 is not supported" in str(result.exception)


def test_missing_checkpoint_and_help(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "nope.pt"), "-o", "m.onnx"])
    assert result.exit_code == 2 and "does not exist" in result.output
    help_text = CliRunner().invoke(cli, ["export", "--help"]).output
    for option in ("--precision", "--batch", "--fused-io", "--opset", "--no-verify", "--json"):
        assert option in help_text


@pytest.mark.parametrize("precision", ["fp8"])
def test_unknown_precision_is_rejected_by_click(
    tiny_checkpoint: Path, tmp_path: Path, precision: str
) -> None:
    args = ["export", str(tiny_checkpoint), "-o", str(tmp_path / "m.onnx")]
    result = CliRunner().invoke(cli, [*args, "--precision", precision])
    assert result.exit_code == 2 and "fp32" in result.output


@pytest.mark.parametrize("precision", ["fp32", "both"])
def test_export_refuses_to_write_over_its_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path, precision: str
) -> None:
    ckpt = tmp_path / "best.onnx"  # a checkpoint with an .onnx name: suffix alone is no guard
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    before = ckpt.read_bytes()
    result = CliRunner().invoke(
        cli, ["export", str(ckpt), "--out", str(ckpt), "--precision", precision, "--no-verify"]
    )
    assert result.exit_code != 0
    assert "is also the input file" in str(result.exception) + result.output
    assert ckpt.read_bytes() == before


def test_export_refuses_a_non_onnx_output_name(tiny_checkpoint: Path) -> None:
    before = tiny_checkpoint.read_bytes()
    result = CliRunner().invoke(
        cli, ["export", str(tiny_checkpoint), "--out", str(tiny_checkpoint), "--no-verify"]
    )
    assert result.exit_code != 0
    assert "Expected a name ending in .onnx" in str(result.exception) + result.output
    assert tiny_checkpoint.read_bytes() == before
