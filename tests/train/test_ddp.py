"""DDP on CPU (gloo): two processes stay in sync, and only rank 0 writes the run folder."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    rank: int, world: int, port: int, out: str, masks: np.ndarray, images: np.ndarray
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    import echogen_trt.train.gan as gan
    import echogen_trt.train.loop as loop
    from echogen_trt.train.config import TrainConfig

    built = []
    real_build = gan.build_generator

    def capture(**options):
        built.append(real_build(**options))
        return built[-1]

    gan.build_generator = capture
    pairs = SimpleNamespace(masks=masks, images=images)
    cfg = TrainConfig(
        out=out, iters=2, width=4, image_size=64, batch_size=2, val_every=2, log_every=1,
        tensorboard=False, device="cpu", seed=3,
    )  # fmt: skip
    summary = loop.train(cfg, train_set=pairs, valid_set=pairs)
    result = Path(out).parent / f"rank{rank}"
    torch.save(dict(built[0].named_parameters()), f"{result}.pt")
    Path(f"{result}.json").write_text(json.dumps(summary.to_dict()))


def test_two_cpu_processes_train_in_sync(tmp_path: Path, tiny_pairs) -> None:
    tr, _ = tiny_pairs
    out = tmp_path / "run"
    # The first optimizer imports torch._dynamo (seconds): do it once here, before forking.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    args = (2, _free_port(), str(out), tr.masks, tr.images)
    mp.start_processes(_worker, args=args, nprocs=2, join=True, start_method="fork")
    p0, p1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(p0[k], p1[k]) for k in p0)  # gradients were all-reduced
    s0, s1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert s0["world_size"] == s1["world_size"] == 2
    assert s0["losses"] != s1["losses"]  # each rank drew its own batches
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 2]  # rank 0 alone logged: baseline, 2 loss rows, validation
    assert (out / "last.pt").exists()


def test_only_rank_0_gets_a_summary_to_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torchrun rank policy lives in the library (the CLI only prints what it returns)."""
    import echogen_trt.train.loop as loop
    from echogen_trt.train.config import TrainConfig

    monkeypatch.setattr(loop, "train", lambda cfg, resume=False: "summary")
    monkeypatch.setenv("RANK", "1")
    assert loop.train_for_report(TrainConfig()) is None
    monkeypatch.setenv("RANK", "0")
    assert loop.train_for_report(TrainConfig()) == "summary"
    monkeypatch.delenv("RANK")
    assert loop.train_for_report(TrainConfig()) == "summary"  # no torchrun: a single process
