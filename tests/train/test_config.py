"""TrainConfig: reference defaults, presets, overrides, and errors naming the key."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from echogen_trt.artifacts.labels import EXPERIMENTS
from echogen_trt.errors import ConfigError
from echogen_trt.train.config import (
    TrainConfig,
    config_from_dict,
    load_config,
    previous_config,
    run_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_the_reference_recipe() -> None:
    cfg = TrainConfig()
    assert (cfg.iters, cfg.batch_size, cfg.lr_g, cfg.lr_d) == (100_000, 8, 1.3e-4, 1.5e-4)
    assert (cfg.beta1, cfg.beta2, cfg.adam_eps) == (0.5, 0.999, 1e-7)
    assert (cfg.adv_weight, cfg.l1_weight, cfg.width, cfg.image_size) == (1.0, 100.0, 64, 256)
    assert (cfg.skips, cfg.decoder_act, cfg.image_interp, cfg.view, cfg.phase) == (
        False,
        "relu",
        "nearest",
        "4CH",
        "ED",
    )


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_each_experiment_has_a_full_size_reference_preset(experiment: str) -> None:
    cfg = load_config(CONFIGS / f"{experiment}.json")
    assert cfg.experiment == experiment
    reference = TrainConfig()
    for key in ("iters", "batch_size", "lr_g", "lr_d", "width", "image_size", "l1_weight"):
        assert getattr(cfg, key) == getattr(reference, key), key


def test_overrides_win_and_none_means_unset(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"iters": 50, "width": 8, "lr_g": 1}))
    cfg = load_config(path, {"iters": 7, "width": None}, base={"seed": 3, "iters": 1})
    assert (cfg.iters, cfg.width, cfg.seed) == (7, 8, 3)
    assert cfg.lr_g == 1.0 and isinstance(cfg.lr_g, float)


def test_save_and_previous_config_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(width=4, image_size=64, out=str(tmp_path))
    save_config(cfg, tmp_path / "config.json")
    assert previous_config(tmp_path) == cfg.to_dict()
    assert previous_config(tmp_path / "nothing") is None


@pytest.mark.parametrize(
    "values,pattern",
    [
        ({"itters": 5}, r"unknown key\(s\) itters\. Expected some of: data"),
        ({"iters": "5"}, r"key 'iters' has type str \('5'\)\. Expected int"),
        ({"iters": 2.5}, r"key 'iters' has type float"),
        ({"skips": 1}, r"key 'skips' has type int \(1\)\. Expected bool"),
        ({"width": True}, r"key 'width' has type bool"),
        ({"amp": "fp8"}, r"amp 'fp8' unknown\. Expected one of: off, bf16, fp16"),
        ({"experiment": "lungs"}, r"experiment 'lungs' \| unknown"),
        ({"batch_size": 0}, r"batch_size is 0\. Expected >= 1"),
        ({"lr_d": 0}, r"lr_d is 0\.0\. Expected > 0"),
        ({"image_size": 8}, r"image_size is 8\. Expected a power of two >= 16"),
        ({"output_bias": "one"}, r"output_bias 'one' unknown\. Expected one of: target_mean, zero"),
    ],
)
def test_bad_values_raise_config_error(values: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict(values)


def test_bad_files_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json \| not found"):
        load_config(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ConfigError, match=r"bad\.json \| not readable JSON"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"list\.json \| top level is list"):
        load_config(tmp_path / "list.json")
    (tmp_path / "key.json").write_text('{"widht": 8}')
    with pytest.raises(ConfigError, match=r"config .*key\.json \| unknown key\(s\) widht"):
        load_config(tmp_path / "key.json")


def test_save_config_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    save_config(TrainConfig(iters=1), path)
    os.link(path, tmp_path / "before.json")  # a second name for the old file's contents
    save_config(TrainConfig(iters=2), path)
    # written beside and moved into place: the old file is never truncated or rewritten
    assert json.loads((tmp_path / "before.json").read_text())["iters"] == 1
    assert json.loads(path.read_text())["iters"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before.json", "config.json"]


def test_run_folder_comes_from_the_flag_then_the_preset_then_the_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"out": "rv_run", "experiment": "atrium"}))
    assert run_config(preset, {"out": "flag_run"}).out == "flag_run"
    assert run_config(preset, {"out": None}).out == "rv_run"
    assert run_config(None, {"experiment": "atrium"}).out == str(Path("runs") / "atrium")
    assert run_config(None, {}).out == str(Path("runs") / TrainConfig().experiment)


def test_resume_reads_the_run_config_named_by_the_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    run = TrainConfig(data="data/camus", experiment="atrium", iters=2000, seed=4, out="rv_run")
    (tmp_path / "rv_run").mkdir()
    save_config(run, tmp_path / "rv_run" / "config.json")
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"out": "rv_run", "experiment": "atrium", "iters": 100_000}))
    with caplog.at_level(logging.WARNING):
        cfg = run_config(preset, {"iters": None, "log_every": 7}, resume=True)
    # the run's data and recipe, not the defaults (data/phantom) nor the preset's iters
    assert (cfg.data, cfg.iters, cfg.seed, cfg.out) == ("data/camus", 2000, 4, "rv_run")
    assert cfg.log_every == 7  # an explicit flag still wins
    assert "iters=2000 from rv_run" in caplog.text and "preset says 100000" in caplog.text
    assert run_config(preset, {"iters": 3000}, resume=True).iters == 3000
    # without --resume the run's config.json is not consulted
    assert run_config(preset, {}).data == TrainConfig().data
