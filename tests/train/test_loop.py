"""The training loop: exact resume, a real drop in validation L1, run folder, clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from echogen_trt.errors import CheckpointError, ConfigError, DataError, TrainingError
from echogen_trt.metrics import fan_metrics
from echogen_trt.train.checkpoint import file_sha256, load_checkpoint, load_generator
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.loop import train

TINY = dict(width=4, image_size=64, batch_size=4, log_every=1, val_images=2, tensorboard=False)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def assert_same_state(a: object, b: object, where: str = "") -> None:
    """Bitwise equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_resume_continues_bitwise_exactly(tmp_path: Path, tiny_pairs) -> None:
    tr, va = tiny_pairs
    base = dict(TINY, deterministic=True, val_every=2, ckpt_every=2, seed=5)
    straight = TrainConfig(out=str(tmp_path / "a"), iters=6, **base)
    train(straight, train_set=tr, valid_set=va)
    first = TrainConfig(out=str(tmp_path / "b"), iters=3, **base)
    assert train(first, train_set=tr, valid_set=va).step == 3
    summary = train(
        TrainConfig(out=str(tmp_path / "b"), iters=6, **base),
        resume=True,
        train_set=tr,
        valid_set=va,
    )
    assert (summary.start_step, summary.step) == (3, 6)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("G", "D", "opt_G", "opt_D", "scaler", "scaler_d", "rng", "step"):
        assert_same_state(a[key], b[key], key)
    assert not torch.are_deterministic_algorithms_enabled()  # the global flag is restored


def test_short_run_lowers_validation_l1(tmp_path: Path, tiny_pairs) -> None:
    # The reference learning rates need a few hundred steps before the sigmoid output leaves 0.5;
    # 5e-4 shows the same descent within the test budget. The zero output bias starts every pixel
    # at 0.5 (the default starts at the mean target: test_output_bias.py covers that recipe).
    tr, va = tiny_pairs
    cfg = TrainConfig(
        out=str(tmp_path / "run"),
        output_bias="zero",
        lr_g=5e-4,
        lr_d=5e-4,
        iters=120,
        width=8,
        image_size=64,
        val_every=60,
        ckpt_every=120,
        log_every=50,
        tensorboard=False,
        seed=0,
    )
    summary = train(cfg, train_set=tr, valid_set=va)
    val = [r for r in rows(tmp_path / "run") if "val_l1" in r]
    assert [r["step"] for r in val] == [0, 60, 120]
    untrained, trained = val[0]["val_l1"], val[-1]["val_l1"]
    assert trained < 0.75 * untrained, (untrained, trained)
    print(f"validation L1 in the fan: untrained {untrained:.4f} -> {trained:.4f} after 120 steps")
    # best.pt is the validation with the lowest selection score (L1 + detail gap), not lowest L1
    best = min(val[1:], key=lambda r: r["val_select"])
    assert summary.best_val_score == best["val_select"] == best["val_l1"] + best["val_detail_gap"]
    assert summary.best_val_l1 == best["val_l1"]
    # best.pt reproduces its recorded validation L1 through load_generator
    g, info = load_generator(summary.best_checkpoint)
    with torch.no_grad():
        fake = g(torch.from_numpy(va.masks.astype(np.float32))[:, None])[:, 0].numpy()
    assert fan_metrics(fake, va.images)["l1"] == pytest.approx(summary.best_val_l1, rel=1e-5)
    assert info["step"] in (60, 120) and info["kept_labels"] == (1, 2, 3)


def test_run_folder_holds_config_metrics_grids_and_pruned_checkpoints(
    tmp_path: Path, tiny_pairs
) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    cfg = TrainConfig(out=str(out), iters=4, ckpt_every=1, keep_last=2, val_every=2, **TINY)
    summary = train(cfg, train_set=tr, valid_set=va)
    assert json.loads((out / "config.json").read_text()) == cfg.to_dict()
    assert sorted(p.name for p in out.glob("step_*.pt")) == ["step_0000003.pt", "step_0000004.pt"]
    assert file_sha256(out / "last.pt") == file_sha256(out / "step_0000004.pt")
    state = load_checkpoint(out / "last.pt")
    assert set(state) == {
        "format_version", "model_config", "disc_config", "experiment", "kept_labels",
        "image_size", "G", "D", "opt_G", "opt_D", "scaler", "scaler_d", "step", "rng",
        "config", "best_val_l1", "best_val_score",
    }  # fmt: skip
    assert state["config"] == cfg.to_dict() and state["step"] == 4
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state["G"])
    losses = [r for r in rows(out) if "g_l1" in r]
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    assert all(np.isfinite(r["it_per_s"]) and r["it_per_s"] > 0 for r in losses)
    grid = cv2.imread(str(out / "val" / "step_0000004.png"), cv2.IMREAD_GRAYSCALE)
    assert grid.shape == (3 * 64, 2 * 64)  # rows mask / generated / real, 2 columns
    assert np.array_equal(grid[128:, :64], np.rint(va.images[0] * 255).astype(np.uint8))
    assert summary.n_train == 8 and summary.n_valid == 2 and summary.losses.keys() == {
        "d_real", "d_fake", "g", "g_adv", "g_l1"
    }  # fmt: skip


def test_resume_takes_the_architecture_from_the_checkpoint(
    tmp_path: Path, tiny_pairs, caplog
) -> None:
    tr, va = tiny_pairs
    out = str(tmp_path / "run")
    train(TrainConfig(out=out, iters=1, val_every=0, **TINY), train_set=tr, valid_set=va)
    wider = TrainConfig(out=out, iters=2, val_every=0, **{**TINY, "width": 8})
    with caplog.at_level(logging.WARNING):
        train(wider, resume=True, train_set=tr, valid_set=va)
    assert "width=4 from the checkpoint" in caplog.text
    assert load_checkpoint(Path(out) / "last.pt")["model_config"]["width"] == 4


def test_resume_keeps_the_runs_output_bias(tmp_path: Path, tiny_pairs, caplog) -> None:
    tr, va = tiny_pairs
    out = Path(tmp_path / "run")
    train(TrainConfig(out=str(out), iters=1, val_every=0, output_bias="zero", **TINY),
          train_set=tr, valid_set=va)  # fmt: skip
    with caplog.at_level(logging.WARNING):
        train(TrainConfig(out=str(out), iters=2, val_every=0, **TINY), resume=True,
              train_set=tr, valid_set=va)  # fmt: skip
    assert "output_bias='zero' from the checkpoint" in caplog.text
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["output_bias"] == "zero" and state["model_config"]["out_bias"] == 0.0
    # a checkpoint from before the option (no output_bias, no out_bias) resumes as the reference
    for key in ("config", "model_config"):
        state[key] = {k: v for k, v in state[key].items() if k not in ("output_bias", "out_bias")}
    torch.save(state, out / "last.pt")
    train(TrainConfig(out=str(out), iters=3, val_every=0, **TINY), resume=True,
          train_set=tr, valid_set=va)  # fmt: skip
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["output_bias"] == "zero" and state["model_config"]["out_bias"] == 0.0


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, tiny_pairs
) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    cfg = TrainConfig(out=str(out), iters=2, val_every=0, **TINY)
    train(cfg, train_set=tr, valid_set=va)
    good = file_sha256(out / "last.pt")
    poisoned = SimpleNamespace(masks=tr.masks, images=np.full_like(tr.images, np.nan))
    more = TrainConfig(out=str(out), iters=4, val_every=0, **TINY)
    with pytest.raises(TrainingError, match=r"step 3 \| non-finite loss .*last good checkpoint"):
        train(more, resume=True, train_set=poisoned, valid_set=va)
    assert file_sha256(out / "last.pt") == good


def test_user_errors_are_raised_before_any_work(tmp_path: Path, tiny_pairs) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    run = dict(train_set=tr, valid_set=va)
    with pytest.raises(CheckpointError, match=r"--resume given but there is no last\.pt"):
        train(TrainConfig(out=str(out), iters=1, **TINY), resume=True, **run)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"out .*file.*not writable"):
        train(TrainConfig(out=str(blocker / "run"), iters=1, **TINY), **run)
    with pytest.raises(DataError, match=r"data .*missing or empty.*echogen-trt synth --out"):
        train(TrainConfig(out=str(tmp_path / "r2"), data=str(tmp_path / "nodata"), **TINY))
    assert not (tmp_path / "r2").exists()  # checked before the run folder is created
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"missing or empty"):
        train(TrainConfig(out=str(out), data=str(tmp_path / "empty"), iters=1, **TINY))
    with pytest.raises(ConfigError, match=r"experiment 'heart' \| unknown"):
        train(TrainConfig(out=str(out), experiment="heart", iters=1, **TINY), **run)
    with pytest.raises(ConfigError, match=r"'fp16' needs a CUDA device"):
        train(TrainConfig(out=str(out), amp="fp16", device="cpu", iters=1, **TINY), **run)
    with pytest.raises(DataError, match=r"size \(64, 64\) does not match image_size 32"):
        train(TrainConfig(out=str(out), iters=1, **{**TINY, "image_size": 32}), **run)
    assert not (out / "last.pt").exists()
    train(TrainConfig(out=str(out), iters=1, val_every=0, **TINY), **run)
    with pytest.raises(ConfigError, match=r"already holds a run \(last\.pt\).*--resume"):
        train(TrainConfig(out=str(out), iters=1, **TINY), **run)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_a_config_error(tmp_path: Path, tiny_pairs) -> None:
    tr, va = tiny_pairs
    with pytest.raises(ConfigError, match=r"device 'cuda' \| CUDA is not available"):
        train(TrainConfig(out=str(tmp_path), device="cuda", **TINY), train_set=tr, valid_set=va)


def test_trains_from_a_camus_tree(tmp_path: Path, camus_tree: Path) -> None:
    cfg = TrainConfig(data=str(camus_tree), out=str(tmp_path / "run"), iters=2, **TINY)
    summary = train(cfg)
    assert (summary.n_train, summary.n_valid, summary.step) == (3, 2, 2)
    assert set(summary.val) == {"l1", "psnr", "ssim", "detail_gap", "select"}


def test_bf16_autocast_and_channels_last_track_fp32(tmp_path: Path, tiny_pairs) -> None:
    tr, va = tiny_pairs
    losses = {}
    for name, opts in (("fp32", {}), ("bf16", {"amp": "bf16"}), ("nhwc", {"channels_last": True})):
        cfg = TrainConfig(out=str(tmp_path / name), iters=2, val_every=0, **TINY, **opts)
        losses[name] = train(cfg, train_set=tr, valid_set=va).losses
    for name in ("bf16", "nhwc"):
        assert losses[name] != {}
        for key, value in losses["fp32"].items():
            assert losses[name][key] == pytest.approx(value, rel=0.05), (name, key)


class FakeClock:
    """Seconds that advance by `tick` on every reading: a deterministic machine of any speed."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick, self.readings = 0.0, tick, 0

    def __call__(self) -> float:
        self.now += self.tick
        self.readings += 1
        return self.now


def test_a_run_with_max_seconds_stops_on_the_clock_and_keeps_the_final_step(
    tmp_path: Path, tiny_pairs
) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    cfg = TrainConfig(out=str(out), iters=10**6, ckpt_every=10**6, val_every=4, max_seconds=30.0,
                      **TINY)  # fmt: skip
    clock = FakeClock(tick=1.0)
    summary = train(cfg, train_set=tr, valid_set=va, clock=clock)
    assert summary.stopped_by == "clock" and 0 < summary.step < 30
    assert clock.readings >= summary.step  # the clock was read before every iteration
    assert clock.now <= 30.0 + clock.tick  # and the run stopped within its budget
    # the final step is validated and checkpointed although neither interval fell on it
    assert load_checkpoint(out / "last.pt")["step"] == summary.step
    assert [r["step"] for r in rows(out) if "val_l1" in r][-1] == summary.step
    assert summary.cpu_seconds > 0 and len(summary.load) == 3


@pytest.mark.parametrize(("step_s", "val_s"), [(20.0, 2.0), (1.0, 20.0)])
def test_the_clock_keeps_room_for_one_more_iteration_and_the_final_validation(
    tmp_path: Path, tiny_pairs, monkeypatch: pytest.MonkeyPatch, step_s: float, val_s: float
) -> None:
    """Slow iterations (on a busy machine one took 50 s) or a slow validation: the loop stops
    early enough for the iteration it starts and the final validation to end within the budget
    (without the iteration reserve the first case ends up to 20 s late, without the validation
    reserve the second)."""
    from echogen_trt.train import loop

    tr, va = tiny_pairs
    clock = FakeClock(tick=1.0)

    def slow_validate(*args: object, **kwargs: object) -> dict[str, float]:
        clock.now += val_s
        return real_validate(*args, **kwargs)

    def slow_step(*args: object, **kwargs: object) -> torch.Tensor:
        clock.now += step_s
        return real_step(*args, **kwargs)

    real_validate, real_step = loop.validate, loop.train_step
    monkeypatch.setattr(loop, "validate", slow_validate)
    monkeypatch.setattr(loop, "train_step", slow_step)
    cfg = TrainConfig(out=str(tmp_path / "run"), iters=10**6, ckpt_every=10**6, val_every=3,
                      max_seconds=150.0, **TINY)  # fmt: skip
    summary = train(cfg, train_set=tr, valid_set=va, clock=clock)
    assert summary.stopped_by == "clock" and summary.step >= 2
    assert clock.now <= 150.0 + clock.tick  # the deadline counts from the first reading


def test_max_seconds_must_be_positive() -> None:
    from echogen_trt.train.config import check_config

    with pytest.raises(ConfigError, match="max_seconds"):
        check_config(TrainConfig(max_seconds=0.0))
