"""`echogen-trt demo` end to end on a tiny configuration: every step, reuse, --fresh, errors.

The tiny run (6 phantom patients, 64x64, width 4, 10 iterations, benchmark batches 1 and 2) goes
through the CLI like a user's; the hidden options shrink it without touching the defaults.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from echogen_trt.cli import cli
from echogen_trt.demo import DemoConfig, run_demo
from echogen_trt.errors import ConfigError, DataError
from echogen_trt.metrics import fan_metrics, outside_fan_saturation

TINY = ["--patients", "6", "--image-size", "64", "--width", "4", "--iters", "10",
        "--batch-size", "2", "--bench-batches", "1,2", "--bench-seconds", "0.02",
        "--no-bench-ceiling", "--eval-seg-iters", "10", "--eval-judges", "1",
        "--eval-min-dice", "0"]  # fmt: skip
PRODUCERS = ["data", "train", "export", "generate", "evaluate", "bench"]  # the steps run here


def run_cli(out: Path, *extra: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), *TINY, *extra, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result, json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One complete tiny demo run: (folder, JSON summary)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("demo") / "demo"
    try:
        _, summary = run_cli(out)
    finally:
        torch.set_num_threads(threads)
    return out, summary


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in summary["steps"]}


def test_every_step_runs_and_the_report_is_written(demo: tuple[Path, dict[str, Any]]) -> None:
    out, summary = demo
    assert statuses(summary) == {**dict.fromkeys(PRODUCERS, "done"), "engine": "skipped",
                                 "report": "done"}  # fmt: skip
    engine = next(s for s in summary["steps"] if s["name"] == "engine")
    assert "TensorRT" in engine["detail"] and "ONNX Runtime" in engine["detail"]
    files = ["report.md", "report.json", "contact_sheet.png", "run/last.pt", "state.json",
             "models/echogen.onnx", "models/echogen.fp16.onnx", "bench/bench.json",
             "evaluate/report.md", "evaluate/evaluation.json"]  # fmt: skip
    for name in files:
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "## Latency" in report and "onnxrt:cpu" in report and "engine (skipped)" in report
    # the evaluate step's Dice table, read from its own evaluation.json
    evaluation = json.loads((out / "evaluate" / "evaluation.json").read_text())
    lv = evaluation["dice"]["consistency"]["lv"]
    assert "## Segmentation consistency" in report and f"{lv:.3f}" in report
    doc = json.loads((out / "report.json").read_text())
    assert doc["training"]["iters"] == 10 and doc["training"]["width"] == 4
    assert doc["config"]["bench_batches"] == [1, 2]
    assert {r[3] for r in doc["latency"]} == {1, 2}  # the batch column


def test_frames_come_from_the_masks_on_disk_and_match_the_checkpoint(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    """masks/*.png -> generate (ONNX Runtime) -> frames/*.png equals the torch generator."""
    from echogen_trt.artifacts.preprocess import resize_mask
    from echogen_trt.runtime.io import read_mask
    from echogen_trt.train.checkpoint import load_generator

    out, _ = demo
    masks = sorted((out / "masks").glob("*.png"))
    frames = sorted((out / "frames").glob("*.png"))
    assert masks and [p.name for p in masks] == [p.name for p in frames]
    generator, _ = load_generator(out / "run" / "last.pt")
    for mask_path, frame_path in zip(masks, frames, strict=True):
        mask = read_mask(mask_path)
        assert mask.shape != (64, 64)  # written at the phantom's own size: generate resizes
        small = resize_mask(mask, (64, 64))  # the training resize, which generate reuses
        with torch.no_grad():
            ref = generator(torch.from_numpy(small.astype(np.float32))[None, None])[0, 0]
        frame = cv2.imread(str(frame_path), cv2.IMREAD_GRAYSCALE)
        assert frame.shape == (64, 64)
        assert np.abs(frame.astype(int) - np.rint(ref.numpy() * 255).astype(int)).max() <= 1


def test_reported_metrics_are_the_frames_against_the_real_images(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    from echogen_trt.data.dataset import load_pairs

    out, summary = demo
    pairs = load_pairs(out / "data", split="test", size=(64, 64))
    fakes = np.stack([
        cv2.imread(str(out / "frames" / f"{p}_4CH_ED.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        for p in pairs.patients
    ])  # fmt: skip
    expected = {
        **fan_metrics(fakes, pairs.images),
        "sat_out": outside_fan_saturation(fakes, pairs.images),
    }
    assert summary["metrics"]["trained"] == pytest.approx(expected)
    assert set(summary["metrics"]) == {"trained", "untrained"}
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape == (28 + 256 * len(pairs.patients), 4 * 256, 3)  # mask|gen|real|untrained


def test_second_run_reuses_every_step(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = demo
    run_cli(out)  # up to date whatever ran before (tests may run in any order)
    ckpt = out / "run" / "last.pt"
    before = ckpt.stat().st_mtime_ns
    result, summary = run_cli(out)
    assert summary["reused"] == PRODUCERS
    assert ckpt.stat().st_mtime_ns == before
    assert "reused (inputs unchanged)" in result.stderr


def test_changed_option_redoes_only_the_steps_that_depend_on_it(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = demo
    _, summary = run_cli(out, "--bench-batches", "1")
    assert statuses(summary)["bench"] == "done"
    assert summary["reused"] == ["data", "train", "export", "generate", "evaluate"]
    batches = [r[3] for r in json.loads((out / "report.json").read_text())["latency"]]
    # ORT FP32 and FP16 and torch, x 2 modes (OpenVINO FP32 and FP16 too where installed)
    assert len(batches) >= 6 and set(batches) == {1}


def test_missing_output_reruns_its_step(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = demo
    shutil.rmtree(out / "frames")  # the frames and generate's manifest
    _, summary = run_cli(out)
    assert statuses(summary)["generate"] == "done"
    assert "train" in summary["reused"] and "export" in summary["reused"]
    assert list((out / "frames").glob("*.png"))


def test_fresh_redoes_everything(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = demo
    ckpt = out / "run" / "last.pt"
    before = ckpt.stat().st_mtime_ns
    torch.set_num_threads(1)
    _, summary = run_cli(out, "--fresh")
    assert summary["reused"] == []
    assert all(statuses(summary)[name] == "done" for name in PRODUCERS)
    assert ckpt.stat().st_mtime_ns != before


def test_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match=r"not empty and holds no state\.json"):
        run_demo(out=str(tmp_path), patients=6, image_size=64, width=4, iters=1)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"patients": 2}, r"--patients \| 2"),
        ({"minutes": 0}, r"--minutes \| 0"),
        ({"image_size": 48}, r"image_size \| 48.*power of two"),
        ({"experiment": "lungs"}, "lungs"),
        ({"bench_batches": (0,)}, "bench_batches"),
    ],
)
def test_bad_options_fail_before_any_work(
    tmp_path: Path, change: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        run_demo(DemoConfig(out=str(tmp_path / "demo"), **change))
    assert not (tmp_path / "demo").exists()


def test_bad_bench_batches_on_the_command_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--bench-batches", "1,x"])
    assert isinstance(result.exception, ConfigError)
    assert "--bench-batches" in str(result.exception)


def test_help_lists_the_user_options_only() -> None:
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--fresh", "--minutes", "--patients", "--device", "--json"):
        assert option in result.output
    assert "--iters" not in result.output and "--width" not in result.output


class FakeClock:
    """Seconds that advance by one on every reading: a machine of any speed, deterministically."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_training_stops_on_the_budget_clock_and_warns_about_few_iterations(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil

    from echogen_trt.demo import steps
    from echogen_trt.demo.budget import MIN_USEFUL_ITERS
    from echogen_trt.demo.context import Context
    from echogen_trt.demo.report import _training_line
    from echogen_trt.train.checkpoint import load_checkpoint

    shutil.copytree(demo[0] / "data", tmp_path / "data")
    cfg = DemoConfig(out=str(tmp_path), patients=6, image_size=64, width=4, batch_size=2,
                     minutes=0.5, progress=False)  # fmt: skip
    clock = FakeClock()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome = steps.train_model_step(Context(cfg, tmp_path, "cpu", clock=clock))
    finally:
        torch.set_num_threads(threads)
    info = outcome.info
    assert info["stopped_by"] == "clock" and info["budget_s"] == 30.0
    assert clock.now <= 30.0 + 1.0  # the whole step, data loading included, kept the budget
    assert 0 < info["iters"] < MIN_USEFUL_ITERS
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == info["iters"]  # final one
    from echogen_trt.data.splits import resolve_split

    n_patients = len(resolve_split(tmp_path / "data")["train"])
    assert info["phase"] == "both" and info["n_train"] == 2 * n_patients  # ED and ES frames
    assert "fewer than" in info["few_iterations"] and "WARNING" in outcome.detail
    line = _training_line(info)
    assert f"**{info['iters']} iterations**" in line and "Warning" in line and "load" in line


def test_the_end_names_the_serve_command(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = demo
    result, _ = run_cli(out)  # every step reused
    assert f"echogen-trt serve --model {out / 'models' / 'echogen.onnx'}" in result.stderr


def test_a_refused_judge_fails_the_evaluate_step_not_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The judges' quality gate may refuse on a small tree: the demo reports the step as
    failed, with the reason, and goes on (frames, bench and the report are still made)."""
    from echogen_trt.demo import steps
    from echogen_trt.demo.context import Context
    from echogen_trt.errors import TrainingError
    from echogen_trt.evaluate import run as evaluate_run

    def refuse(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise TrainingError("judge | seed 1: la 0.000 after a retry. Expected >= 0.7.")

    monkeypatch.setattr(evaluate_run, "run_evaluation", refuse)
    ctx = Context(DemoConfig(out=str(tmp_path)), tmp_path, "cpu")
    ctx.outputs["export"] = {"onnx": "models/echogen.onnx"}
    outcome = steps.evaluate_step(ctx)
    assert outcome.status == "failed"
    assert "la 0.000" in outcome.detail and outcome.info == {}
