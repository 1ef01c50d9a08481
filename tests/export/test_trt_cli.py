"""`echogen-trt build-engine` through click, with the fake TensorRT and fake CUDA patched in."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from echogen_trt.cli import cli, main
from echogen_trt.errors import BackendUnavailable
from echogen_trt.runtime import availability
from echogen_trt.runtime.gpu import cuda_mem
from fakes.fake_cuda import FakeCuda
from fakes.fake_tensorrt import fake_trt_builds, make_fake_trt


@pytest.fixture
def fake_trt(monkeypatch):
    cuda = FakeCuda()
    trt = make_fake_trt("10.3.0", cuda=cuda)
    monkeypatch.setattr(availability, "require_tensorrt", lambda: trt)
    monkeypatch.setattr(cuda_mem, "get_cuda_api", lambda prefer=None: cuda)
    return trt


def test_help_lists_the_options():
    result = CliRunner().invoke(cli, ["build-engine", "--help"])
    assert result.exit_code == 0
    for option in (
        "--out",
        "--precision",
        "--min-batch",
        "--opt-batch",
        "--max-batch",
        "--workspace-mb",
        "--timing-cache",
        "--dla-core",
        "--target",
        "--json",
    ):
        assert option in result.output  # fmt: skip


def test_build_json_summary(tiny_onnx, tmp_path, fake_trt):
    out = tmp_path / "tiny.engine"
    args = [
        "build-engine",
        str(tiny_onnx.path),
        "--out",
        str(out),
        "--max-batch",
        "4",
        "--workspace-mb",
        "256",
        "--timing-cache",
        str(tmp_path / "t.cache"),
        "--json",
    ]
    result = CliRunner().invoke(cli, args)  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # logs go to stderr
    assert summary["engine"] == str(out) and out.is_file()
    assert summary["provenance"] == str(out) + ".json"
    assert summary["precision"] == "fp16" and summary["strongly_typed"] is False
    assert summary["options"] | {"timing_cache": None} == {
        "precision": "fp16", "min_batch": 1, "opt_batch": 4, "max_batch": 4,
        "workspace_mb": 256, "timing_cache": None, "dla_core": None, "target": "desktop",
    }  # fmt: skip
    assert summary["profile"]["mask"]["max"] == [4, 1, 64, 64]
    assert (tmp_path / "t.cache").is_file()
    assert fake_trt_builds(fake_trt)[-1].pools == {"WORKSPACE": 256 << 20}


def test_build_text_summary(tiny_onnx, tmp_path, fake_trt):
    out = tmp_path / "tiny.engine"
    result = CliRunner().invoke(cli, ["build-engine", str(tiny_onnx.path), "-o", str(out),
                                      "--target", "jetson", "--precision", "fp32"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"engine      {out}" in result.output
    assert "precision   fp32 (weak typing)" in result.output
    assert "batch       1/1/8" in result.output


def test_without_tensorrt_the_error_says_how_to_install(tiny_onnx, tmp_path):
    result = CliRunner().invoke(cli, ["build-engine", str(tiny_onnx.path), "-o",
                                      str(tmp_path / "m.engine")])  # fmt: skip
    assert isinstance(result.exception, BackendUnavailable)
    assert "pip install 'echogen-trt[trt]'" in str(result.exception)
    assert "JetPack" in str(result.exception)


def test_user_errors_exit_1_with_one_line(tiny_onnx, tmp_path, fake_trt, capsys):
    with pytest.raises(SystemExit) as info:
        main(["build-engine", str(tiny_onnx.path), "--min-batch", "8", "--max-batch", "2"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: batch sizes | need 1 <= min <= opt <= max")


def test_bad_choice_is_a_usage_error(tiny_onnx):
    result = CliRunner().invoke(cli, ["build-engine", str(tiny_onnx.path), "--precision", "int8"])
    assert result.exit_code == 2
    assert "'int8' is not one of 'fp16', 'fp32'" in result.output
