"""`echogen-trt train` through click: overrides, --json, --resume, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from echogen_trt.cli import cli, main
from echogen_trt.train.checkpoint import load_checkpoint

FAST = ["--width", "4", "--image-size", "64", "--batch-size", "2", "--log-every", "1"]


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--data", "--experiment", "--config", "--resume", "--json", "--amp"):
        assert option in result.output


def test_trains_resumes_and_prints_json(tmp_path: Path, camus_tree: Path) -> None:
    out = tmp_path / "run"
    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps({"experiment": "atrium", "iters": 50, "val_every": 2}))
    args = ["train", "--data", str(camus_tree), "--out", str(out), "--config", str(preset)]
    result = CliRunner().invoke(cli, [*args, *FAST, "--iters", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["step"], summary["n_train"], summary["n_valid"]) == (2, 3, 2)
    saved = json.loads((out / "config.json").read_text())
    assert (saved["experiment"], saved["iters"], saved["width"]) == ("atrium", 2, 4)
    # --resume needs only --out: data, experiment and width come from the run's config.json
    result = CliRunner().invoke(cli, ["train", "--out", str(out), "--resume", "--iters", "3"])
    assert result.exit_code == 0, result.output
    assert "trained 2 -> 3 steps" in result.output and "best:" in result.output
    state = load_checkpoint(out / "last.pt")
    assert (state["step"], state["experiment"], state["kept_labels"]) == (3, "atrium", [3])


def test_resume_through_the_preset_keeps_the_runs_data(
    tmp_path: Path, camus_tree: Path, monkeypatch
) -> None:
    # the preset names the run folder; the data was given on the command line of the first run
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps({"out": "rv_run", "experiment": "atrium", "val_every": 0}))
    first = ["train", "--config", str(preset), "--data", str(camus_tree), *FAST, "--iters", "1"]
    result = CliRunner().invoke(cli, first)
    assert result.exit_code == 0, result.output
    # --config ... --resume: rv_run/config.json supplies the data (not the default data/phantom)
    again = ["train", "--config", str(preset), "--resume", "--iters", "2", "--log-every", "2"]
    result = CliRunner().invoke(cli, [*again, "--width", "8", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 2
    saved = json.loads((tmp_path / "rv_run" / "config.json").read_text())
    assert saved["data"] == str(camus_tree) and saved["out"] == "rv_run"
    assert (saved["iters"], saved["log_every"], saved["batch_size"]) == (2, 2, 2)  # flags win
    assert saved["width"] == 4  # except the architecture, which the checkpoint fixes
    state = load_checkpoint(tmp_path / "rv_run" / "last.pt")
    assert (state["step"], state["config"]["data"], state["kept_labels"]) == (
        2,
        str(camus_tree),
        [3],
    )


def test_errors_are_one_line_with_exit_status_1(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere"
    code = _exit_code(["train", "--data", str(missing), "--out", str(tmp_path / "r"), *FAST])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: data ") and "echogen-trt synth --out" in err
    code = _exit_code(["train", "--config", str(tmp_path / "none.json")])
    assert code == 1 and "none.json | not found" in capsys.readouterr().err


def test_unknown_experiment_is_rejected_by_click(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--experiment", "lungs", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "lungs" in result.output


def _exit_code(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_under_torchrun_only_rank_0_reports(monkeypatch, tmp_path: Path) -> None:
    """Other ranks neither validate nor save, so their summary has no best checkpoint: printing
    it crashed every rank but 0 (found by running the README's torchrun command)."""
    from echogen_trt.train import loop

    class Summary:
        def to_dict(self) -> dict[str, object]:
            return {"best_checkpoint": None, "best_val_l1": None, "val": {}}

    monkeypatch.setattr(loop, "train", lambda cfg, resume=False: Summary())
    monkeypatch.setenv("RANK", "1")
    result = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
