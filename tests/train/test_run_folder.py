"""The run folder under careless use (issue 16): a folder that is not a run, the dataset as
--out, a checkpoint write cut short by a kill or a full disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from echogen_trt.errors import ConfigError, OutputError
from echogen_trt.train import run_folder
from echogen_trt.train.checkpoint import file_sha256, load_checkpoint
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.loop import train
from fakes.full_disk import fill_disk

TINY = dict(width=4, image_size=64, batch_size=4, log_every=1, val_images=2, tensorboard=False)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path, tiny_pairs) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "own settings"}')
    with pytest.raises(ConfigError, match=r"out .*mine \| is a non-empty folder that is not a "):
        train(TrainConfig(out=str(out), iters=1, **TINY), train_set=tr, valid_set=va)
    assert (out / "config.json").read_text() == '{"my": "own settings"}'
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    (out / "config.json").unlink()
    (out / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a training run"):
        train(TrainConfig(out=str(out), iters=1, **TINY), train_set=tr, valid_set=va)


def test_a_run_that_died_before_its_first_checkpoint_can_be_restarted(
    tmp_path: Path, tiny_pairs
) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    train(TrainConfig(out=str(out), iters=1, val_every=1, **TINY), train_set=tr, valid_set=va)
    for name in ("last.pt", "best.pt", "step_0000001.pt"):
        (out / name).unlink()  # as if killed before the first checkpoint
    train(TrainConfig(out=str(out), iters=1, val_every=1, **TINY), train_set=tr, valid_set=va)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 1]  # the abandoned run's rows are gone


def test_out_equal_to_or_inside_the_data_is_refused(tmp_path: Path, camus_tree: Path) -> None:
    before = sorted(p.name for p in camus_tree.iterdir())
    for out in (camus_tree, camus_tree / "runs" / "x"):
        with pytest.raises(ConfigError, match=r"is the dataset folder --data .*camus or lies"):
            train(TrainConfig(out=str(out), data=str(camus_tree), iters=1, **TINY))
    assert sorted(p.name for p in camus_tree.iterdir()) == before


def test_a_kill_during_a_checkpoint_write_leaves_no_orphan_or_duplicate_rows(
    tmp_path: Path, tiny_pairs, monkeypatch: pytest.MonkeyPatch
) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    base = dict(TINY, val_every=1, ckpt_every=2)
    train(TrainConfig(out=str(out), iters=2, **base), train_set=tr, valid_set=va)
    real_save = run_folder.save_checkpoint

    def killed(state: dict, path: Path) -> Path:
        if Path(path).name == "step_0000004.pt":  # kill -9 in the middle of this write
            (out / ".step_0000004.pt.0123456789ab.tmp").write_bytes(b"PK half a checkpoint")
            raise KeyboardInterrupt
        return real_save(state, path)

    with monkeypatch.context() as patch:
        patch.setattr(run_folder, "save_checkpoint", killed)
        with pytest.raises(KeyboardInterrupt):
            train(
                TrainConfig(out=str(out), iters=4, **base), resume=True, train_set=tr, valid_set=va
            )
    assert load_checkpoint(out / "last.pt")["step"] == 2
    train(TrainConfig(out=str(out), iters=4, **base), resume=True, train_set=tr, valid_set=va)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r["step"] for r in rows if "it_per_s" in r]
    validated = [r["step"] for r in rows if "val_l1" in r]
    assert (logged, validated) == ([1, 2, 3, 4], [0, 1, 2, 3, 4])


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_last_good_one(
    tmp_path: Path, tiny_pairs, monkeypatch: pytest.MonkeyPatch
) -> None:
    tr, va = tiny_pairs
    out = tmp_path / "run"
    base = dict(TINY, val_every=0, ckpt_every=2)
    train(TrainConfig(out=str(out), iters=2, **base), train_set=tr, valid_set=va)
    good = file_sha256(out / "last.pt")
    fill_disk(monkeypatch, room=20_000)  # config.json fits, a checkpoint does not
    with pytest.raises(OutputError) as info:
        train(TrainConfig(out=str(out), iters=4, **base), resume=True, train_set=tr, valid_set=va)
    message = str(info.value)
    assert message.startswith(f"output {out / 'step_0000004.pt'} | cannot be written (No space")
    assert "\n" not in message
    assert file_sha256(out / "last.pt") == good
    assert not (out / "step_0000004.pt").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
