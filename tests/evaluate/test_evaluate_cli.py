"""`echogen-trt evaluate` end to end: a tiny exported generator judged on a tiny phantom tree."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest
from click.testing import CliRunner, Result

from echogen_trt.cli import cli, main

FAST = ["--seg-iters", "20", "--seg-width", "4", "--judges", "1", "--judge-min-dice", "0"]


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, ["evaluate", *map(str, args)])


def test_evaluate_prints_a_table_writes_json_and_a_report_and_reuses_its_segmenters(
    tmp_path: Path, phantom_tree: Path, tiny_model: SimpleNamespace
) -> None:
    cache, report, out = tmp_path / "cache", tmp_path / "report", tmp_path / "eval.json"
    common = ["--data", phantom_tree, "--model", tiny_model.path, "--cache", cache, *FAST]
    first = run(*common, "--json", out, "--report", report)
    assert first.exit_code == 0, first.output
    assert "real-trained U-Net on generated frames (consistency)" in first.output
    assert "KID (segmenter encoder" in first.output
    summary = json.loads(out.read_text())
    assert set(summary["dice"]) == {
        "ceiling", "consistency", "floor", "normalised", "synthetic_only"
    }  # fmt: skip
    assert set(summary["dice"]["ceiling"]) == {"lv", "myo", "la", "epi"}
    assert summary["model"]["backend"] == "OnnxRuntimeBackend"
    assert summary["segmenter"]["cache"] == "trained"
    assert summary["segmenter"]["params"] < 3_000_000
    picture = cv2.imread(str(report / "examples.png"))
    assert picture.shape == (4 * 128, 5 * 128, 3)  # 4 test frames x (mask, 2 frames, 2 overlays)
    text = (report / "report.md").read_text()
    assert "Stojanovski" in text and "![examples](examples.png)" in text
    assert json.loads((report / "evaluation.json").read_text())["n_test"] == 4

    again = run(*common, "--json", "-", "--no-synthetic")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["segmenter"]["cache"] == "reused"
    assert second["dice"]["ceiling"] == summary["dice"]["ceiling"]
    assert "synthetic_only" not in second["dice"]


def test_perfect_scores_stay_valid_json(tmp_path: Path) -> None:
    from echogen_trt.evaluate.report import json_text

    assert json.loads(json_text({"psnr": float("inf"), "x": [float("nan"), 1.0]})) == {
        "psnr": None,
        "x": [None, 1.0],
    }


def test_a_missing_model_is_one_line_and_exit_1(
    tmp_path: Path, phantom_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--data", str(phantom_tree), "--model", str(tmp_path / "no.onnx")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model ") and "not found" in err


def test_judging_the_training_split_is_not_offered(phantom_tree: Path, tmp_path: Path) -> None:
    result = run("--data", phantom_tree, "--model", tmp_path / "m.onnx", "--split", "train")
    assert result.exit_code == 2 and "'train' is not one of 'test', 'valid'" in result.output
