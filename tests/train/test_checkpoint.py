"""Checkpoints rebuild the generator alone, restore RNG states, and fail clearly on bad files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from echogen_trt.errors import CheckpointError
from echogen_trt.models.factory import build_generator, generator_config
from echogen_trt.train.checkpoint import (
    file_sha256,
    generator_state,
    load_checkpoint,
    load_generator,
    prune_checkpoints,
    restore_rng,
    rng_state,
    save_checkpoint,
    unwrap,
)


@pytest.fixture
def tiny_ckpt(tmp_path):
    torch.manual_seed(1)
    cfg = generator_config(width=4, image_size=32)
    model = build_generator(**cfg)
    with torch.no_grad():  # make BN running stats non-trivial so they must round-trip
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    path = save_checkpoint(
        generator_state(model, model_config=cfg, experiment="ventricle_atrium", step=7),
        tmp_path / "g.pt",
    )
    return path, model.eval(), cfg


def test_load_generator_rebuilds_the_model_in_eval_mode(tiny_ckpt) -> None:
    path, model, cfg = tiny_ckpt
    loaded, info = load_generator(path)
    assert not loaded.training
    x = torch.randint(0, 4, (2, 1, 32, 32)).float()
    assert torch.equal(loaded(x), model(x))
    assert info == {
        "model_config": cfg,
        "experiment": "ventricle_atrium",
        "kept_labels": (1, 3),
        "image_size": 32,
        "step": 7,
        "sha256": file_sha256(path),
        "recipe": {"output_bias": "zero"},  # no config recorded: the reference's zero bias
    }
    assert len(info["sha256"]) == 64


def test_saves_leave_no_temporary_files(tiny_ckpt) -> None:
    path, _, _ = tiny_ckpt
    assert [p.name for p in path.parent.iterdir()] == ["g.pt"]


def test_unwrap_strips_wrappers() -> None:
    inner = nn.Linear(2, 2)

    class Wrapper(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    assert unwrap(Wrapper(Wrapper(inner))) is inner
    assert unwrap(inner) is inner


def test_missing_corrupt_and_foreign_files_raise_checkpoint_error(tiny_ckpt, tmp_path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.pt \| not found"):
        load_generator(tmp_path / "nope.pt")
    path, model, _ = tiny_ckpt
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"truncated\.pt \| cannot be read"):
        load_generator(truncated)
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), bare)
    with pytest.raises(CheckpointError, match=r"bare\.pt \| is not an echogen-trt checkpoint"):
        load_generator(bare)
    pickled = tmp_path / "pickled.pt"
    torch.save(model, pickled)  # a whole module: refused by weights_only
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_generator(pickled)


def test_mismatched_weights_and_newer_format_are_refused(tiny_ckpt, tmp_path) -> None:
    path, _, _ = tiny_ckpt
    state = load_checkpoint(path)
    state["model_config"] = {**state["model_config"], "width": 8}
    save_checkpoint(state, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="do not match its model_config"):
        load_generator(tmp_path / "wrong.pt")
    state["format_version"] = 99
    save_checkpoint(state, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format_version 99 is newer"):
        load_generator(tmp_path / "future.pt")


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path) -> None:
    sampler = torch.Generator().manual_seed(3)
    torch.manual_seed(4)
    np.random.seed(5)
    random.seed(6)
    save_checkpoint({"rng": rng_state(sampler)}, tmp_path / "rng.pt")
    first = (torch.rand(3), torch.randint(9, (3,), generator=sampler), np.random.rand(3))
    first_py = random.random()
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    restore_rng(state["rng"], sampler)
    again = (torch.rand(3), torch.randint(9, (3,), generator=sampler), np.random.rand(3))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert np.array_equal(first[2], again[2]) and random.random() == first_py


def test_prune_keeps_the_newest_steps(tmp_path) -> None:
    for step in (5, 10, 15, 20):
        (tmp_path / f"step_{step:07d}.pt").write_bytes(b"x")
    (tmp_path / "best.pt").write_bytes(b"x")
    deleted = prune_checkpoints(tmp_path, keep_last=2)
    assert sorted(p.name for p in deleted) == ["step_0000005.pt", "step_0000010.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.pt",
        "step_0000015.pt",
        "step_0000020.pt",
    ]
