"""train.speed: the timing the demo's budget rests on is the training loop's own draw and step."""

from __future__ import annotations

import pytest
import torch

from echogen_trt.train import speed
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.data_feed import as_tensors, sample_batch
from echogen_trt.train.gan import build_gan

CPU = torch.device("cpu")


def test_step_seconds_times_the_loops_batches_after_warm_up(
    tiny_pairs, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = TrainConfig(width=4, image_size=64, batch_size=4, device="cpu", seed=5)
    masks, images = as_tensors(tiny_pairs[0], CPU)
    seen: list[torch.Tensor] = []
    real_step = speed.train_step

    def spy(gan, m, x, c):  # type: ignore[no-untyped-def]
        seen.append(m)
        return real_step(gan, m, x, c)

    monkeypatch.setattr(speed, "train_step", spy)
    times = speed.step_seconds(build_gan(cfg, CPU), masks, images, cfg, 3, warmup=2)
    assert len(times) == 3 and all(t > 0 for t in times)
    # the same batches the loop draws with a sampler seeded like rank 0's
    sampler = torch.Generator().manual_seed(cfg.seed)
    expected = [sample_batch(masks, images, cfg, sampler)[0] for _ in range(5)]
    assert len(seen) == 5
    assert all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))


def test_the_demo_measures_with_the_training_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """demo.budget.measure_speed is the median of train.speed's timings, not a copy of the loop."""
    from types import SimpleNamespace

    import numpy as np

    from echogen_trt.demo.budget import measure_speed

    monkeypatch.setattr(speed, "step_seconds", lambda *a, **k: [0.3, 0.1, 0.2])
    rng = np.random.default_rng(0)
    pairs = SimpleNamespace(
        masks=rng.integers(0, 4, (3, 32, 32), dtype=np.uint8),
        images=rng.random((3, 32, 32), dtype=np.float32),
    )
    cfg = TrainConfig(width=2, image_size=32, batch_size=2, device="cpu")
    assert measure_speed(cfg, pairs, 3) == 0.2
