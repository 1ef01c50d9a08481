"""The one output-safety rule (issue #22): no command writes over one of its inputs, into an
input dataset, or a file where a folder is (siblings included), and it refuses before any work."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError, ExportError, OutputError
from echogen_trt.export import int8
from echogen_trt.export.export_result import ExportResult
from echogen_trt.export.trt_build import build_engine

NEEDS_NNCF = pytest.mark.skipif(
    importlib.util.find_spec("nncf") is None or importlib.util.find_spec("openvino") is None,
    reason="the [int8] extra (nncf, openvino) is not installed",
)
MASKS = np.zeros((2, 64, 64), np.uint8)


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(result: Result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    text = str(result.exception) + result.output
    for word in words:
        assert word in text, text


def test_rule_covers_links_hard_links_datasets_and_folders(tmp_path: Path) -> None:
    from echogen_trt.fileio import check_outputs

    model, data = tmp_path / "m.onnx", tmp_path / "data"
    model.write_bytes(b"model")
    (data / "p1").mkdir(parents=True)
    os.link(model, tmp_path / "hard.json")
    os.symlink(model, tmp_path / "soft.json")
    inputs = {"model m.onnx": model, "dataset data": data}
    for out in ("hard.json", "soft.json", "m.onnx"):
        with pytest.raises(ConfigError, match=r"is also the model m\.onnx"):
            check_outputs({"--json": tmp_path / out}, inputs=inputs)
    with pytest.raises(ConfigError, match="lies inside the dataset data"):
        check_outputs({"--json": data / "p1" / "x.json"}, inputs=inputs)
    with pytest.raises(ConfigError, match="lies inside the dataset data"):
        check_outputs({}, inputs=inputs, folders={"--report": data})
    with pytest.raises(OutputError, match="is a folder"):
        check_outputs({"--json": data}, inputs={})
    check_outputs({"--json": tmp_path / "ok.json"}, inputs=inputs, folders={"--report": tmp_path})


def test_evaluate_json_and_report_never_touch_the_model_or_the_dataset(
    tiny_onnx: ExportResult, tmp_path: Path
) -> None:
    model, data = tmp_path / "m.onnx", tmp_path / "data"
    shutil.copy(tiny_onnx.path, model)
    data.mkdir()
    before = model.read_bytes()
    base = ("evaluate", "--data", data, "--model", model, "--no-cache")
    refused(invoke(*base, "--json", model), "--json", "is also the model")
    assert model.read_bytes() == before
    refused(invoke(*base, "--report", data), "--report", "lies inside the dataset")
    refused(invoke(*base, "--report", data / "eval"), "lies inside the dataset")
    (tmp_path / "rep" / "report.md").mkdir(parents=True)
    refused(invoke(*base, "--report", tmp_path / "rep"), "report.md", "is a folder")
    assert sorted(p.name for p in data.iterdir()) == []


def test_bench_json_is_refused_before_the_timing(tiny_onnx: ExportResult, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx.path, model)
    before = model.read_bytes()
    quick = ("--backend", "onnxrt:cpu", "--batch", "1", "--iterations", "1", "--warmup", "1",
             "--mode", "compute", "--no-baseline", "--no-ceiling")  # fmt: skip
    refused(invoke("bench", model, *quick, "--json", model), "--json", "is also the model")
    refused(invoke("bench", model, *quick, "--plot", model), "--plot", "is also the model")
    assert model.read_bytes() == before


@NEEDS_NNCF
def test_int8_ir_weights_never_replace_the_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "ck.bin"  # the IR's weights file would be ck.bin too
    shutil.copy(tiny_checkpoint, ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(
        ConfigError, match=r"INT8 output weights .*ck\.bin \| is also the checkpoint"
    ):
        int8.export_int8(ckpt, tmp_path / "ck.xml", calibration=MASKS, heldout=MASKS)
    assert ckpt.read_bytes() == before
    (tmp_path / "d.bin").mkdir()
    with pytest.raises(OutputError, match=r"d\.bin \| is a folder"):
        int8.export_int8(tiny_checkpoint, tmp_path / "d.xml", calibration=MASKS, heldout=MASKS)
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ConfigError, match="lies inside the --calibrate"):
        int8.export_int8(tiny_checkpoint, data / "m.onnx", calibrate=data)
    assert not list(data.iterdir())


def test_int8_rerun_removes_a_killed_runs_staging_folder(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    dead = tmp_path / ".int8-deadbeef"
    dead.mkdir()
    (dead / "fp32.onnx").write_bytes(b"the FP32 model a kill -9 left")
    live = tmp_path / ".int8-live"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a concurrent export's folder
    try:
        with pytest.raises(ExportError, match="calibration masks"):  # fails after staging
            int8.export_int8(tiny_checkpoint, tmp_path / "m.onnx", calibration=MASKS[:, :8, :8],
                             heldout=MASKS)  # fmt: skip
    finally:
        os.close(fd)
    assert not dead.exists() and live.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".int8-") and p != live]


def test_build_engine_checks_the_provenance_sibling(
    tiny_onnx: ExportResult, tmp_path: Path
) -> None:
    (tmp_path / "x.engine.json").mkdir()
    with pytest.raises(OutputError, match=r"x\.engine\.json \| is a folder"):
        build_engine(tiny_onnx.path, tmp_path / "x.engine")
    onnx_named_like_it = tmp_path / "y.engine.json"
    shutil.copy(tiny_onnx.path, onnx_named_like_it)
    with pytest.raises(ConfigError, match="is also the ONNX"):
        build_engine(onnx_named_like_it, tmp_path / "y.engine")
