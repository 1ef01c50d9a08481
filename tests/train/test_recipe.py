"""The reference recipe inside one training iteration, checked against independent recomputation:
fakes from G in eval mode, two separate D steps (targets 1 then 0), the G loss weights, the Adam
settings, sampling with replacement, and one AMP scaler per optimizer."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import echogen_trt.train.loop as loop
from echogen_trt.train.config import TrainConfig
from echogen_trt.train.data_feed import as_tensors
from echogen_trt.train.gan import GAN, build_gan
from echogen_trt.train.state import checkpoint_state, restore_state

CPU = torch.device("cpu")
TINY = dict(width=4, image_size=64, batch_size=4, device="cpu", tensorboard=False)


@pytest.fixture
def batch(tiny_pairs) -> tuple[torch.Tensor, torch.Tensor]:
    masks, images = as_tensors(tiny_pairs[0], CPU)
    return masks[:4], images[:4]


def spy_steps(opt: torch.optim.Optimizer, model: nn.Module) -> list[dict[str, Any]]:
    """Wrap opt.step: each call records the model's parameters and gradients just before it."""
    calls: list[dict[str, Any]] = []
    real_step = opt.step

    def step(*args: Any, **kwargs: Any) -> Any:
        named = dict(model.named_parameters())
        calls.append(
            {
                "params": {k: p.detach().clone() for k, p in named.items()},
                "grads": {k: p.grad.detach().clone() for k, p in named.items()},
            }
        )
        return real_step(*args, **kwargs)

    opt.step = step  # type: ignore[method-assign]
    return calls


def grads_of(model: nn.Module, params: dict[str, torch.Tensor], loss_fn: Any) -> dict:
    """d loss / d params, with `model` evaluated functionally at `params`."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    loss = loss_fn(lambda *args: functional_call(model, leaves, args))
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))


def mse_to(target: float, inputs: torch.Tensor, m: torch.Tensor) -> Any:
    """LSGAN loss of D(inputs, m) against a constant target, for grads_of."""

    def loss(d: Any) -> torch.Tensor:
        scores = d(inputs, m)
        return F.mse_loss(scores, torch.full_like(scores, target))

    return loss


def assert_grads_close(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-7, msg=key)


def test_fakes_for_the_d_steps_come_from_g_in_eval_mode_without_grad(batch) -> None:
    m, x = batch
    gan = build_gan(TrainConfig(**TINY), CPU)
    expected_fake = copy.deepcopy(gan.G).eval()(m).detach()
    g_calls: list[tuple[bool, bool]] = []
    d_inputs: list[torch.Tensor] = []
    gan.G.register_forward_pre_hook(
        lambda mod, a: g_calls.append((mod.training, torch.is_grad_enabled()))
    )
    gan.D.register_forward_pre_hook(lambda mod, a: d_inputs.append(a[0].detach().clone()))
    loop.train_step(gan, m, x, TrainConfig(**TINY))
    # G runs twice: the fakes for D (eval, no grad), then the G step (train mode, with grad)
    assert g_calls == [(False, False), (True, True)]
    # D sees the real batch, then exactly the eval-mode fakes, then the G step's fakes
    assert len(d_inputs) == 3
    assert torch.equal(d_inputs[0], x)
    torch.testing.assert_close(d_inputs[1], expected_fake, rtol=0, atol=1e-6)
    assert not torch.allclose(d_inputs[2], expected_fake)  # train-mode BN: batch statistics


def test_d_takes_two_separate_steps_real_target_one_then_fake_target_zero(batch) -> None:
    m, x = batch
    cfg = TrainConfig(**TINY)
    gan = build_gan(cfg, CPU)
    fake = copy.deepcopy(gan.G).eval()(m).detach()
    d_model = copy.deepcopy(gan.D).train()
    d_calls, g_calls = spy_steps(gan.opt_D, gan.D), spy_steps(gan.opt_G, gan.G)
    losses = loop.train_step(gan, m, x, cfg)
    assert len(d_calls) == 2 and len(g_calls) == 1
    for call, inputs, target in ((d_calls[0], x, 1.0), (d_calls[1], fake, 0.0)):
        # the gradient at each step is that of its own loss only (zeroed in between)
        expected = grads_of(d_model, call["params"], mse_to(target, inputs, m))
        assert_grads_close(call["grads"], expected)
    first, second = d_calls[0]["params"], d_calls[1]["params"]
    assert any(not torch.equal(first[k], second[k]) for k in first)  # the real step came first
    scores = functional_call(d_model, d_calls[0]["params"], (x, m))
    d_real = F.mse_loss(scores, torch.ones_like(scores))
    assert losses[0].item() == pytest.approx(d_real.item(), rel=1e-5)


@pytest.mark.parametrize(("adv_weight", "l1_weight"), [(1.0, 100.0), (0.5, 7.0)])
def test_generator_loss_is_weighted_adversarial_plus_l1_from_the_config(
    batch, adv_weight: float, l1_weight: float
) -> None:
    m, x = batch
    cfg = TrainConfig(**TINY, adv_weight=adv_weight, l1_weight=l1_weight)
    gan = build_gan(cfg, CPU)
    g_model = copy.deepcopy(gan.G).train()
    g_params = {k: p.detach().clone() for k, p in gan.G.named_parameters()}
    g_calls = spy_steps(gan.opt_G, gan.G)
    _, _, g, adv, l1 = loop.train_step(gan, m, x, cfg).tolist()
    assert g == pytest.approx(adv_weight * adv + l1_weight * l1, rel=1e-5)
    d_after = gan.D  # the G step leaves D's parameters alone

    def g_loss(gen: Any) -> torch.Tensor:
        out = gen(m)
        scores = d_after(out, m)
        return adv_weight * F.mse_loss(scores, torch.ones_like(scores)) + l1_weight * (
            (out - x).abs().mean()
        )

    with torch.no_grad():
        out = functional_call(g_model, g_params, (m,))
        scores = d_after(out, m)
        assert adv == pytest.approx(F.mse_loss(scores, torch.ones_like(scores)).item(), rel=1e-5)
        assert l1 == pytest.approx((out - x).abs().mean().item(), rel=1e-5)
    # the G step's gradient is that of this weighted loss (not just the reported number)
    assert_grads_close(g_calls[0]["grads"], grads_of(g_model, g_params, g_loss))


def test_adam_settings_come_from_the_config() -> None:
    gan = build_gan(TrainConfig(**TINY), CPU)
    for opt, lr, model in ((gan.opt_G, 1.3e-4, gan.G), (gan.opt_D, 1.5e-4, gan.D)):
        assert isinstance(opt, torch.optim.Adam) and len(opt.param_groups) == 1
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["eps"]) == (lr, (0.5, 0.999), 1e-7)
        assert {id(p) for p in group["params"]} == {id(p) for p in model.parameters()}
    custom = TrainConfig(**TINY, lr_g=2e-3, lr_d=3e-3, beta1=0.1, beta2=0.9, adam_eps=1e-5)
    gan = build_gan(custom, CPU)
    got = [
        (g["lr"], g["betas"], g["eps"])
        for g in (gan.opt_G.param_groups[0], gan.opt_D.param_groups[0])
    ]
    assert got == [(2e-3, (0.1, 0.9), 1e-5), (3e-3, (0.1, 0.9), 1e-5)]


def test_batches_are_sampled_with_replacement(tmp_path: Path, tiny_pairs, monkeypatch) -> None:
    two = SimpleNamespace(masks=tiny_pairs[0].masks[:2], images=tiny_pairs[0].images[:2])
    assert not np.array_equal(two.masks[0], two.masks[1])
    seen: list[torch.Tensor] = []
    real_step = loop.train_step

    def spy(gan: GAN, m: torch.Tensor, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
        seen.append(m.detach().clone())
        return real_step(gan, m, x, cfg)

    monkeypatch.setattr(loop, "train_step", spy)
    cfg = TrainConfig(**{**TINY, "batch_size": 8}, out=str(tmp_path / "run"), iters=3, val_every=0)
    assert loop.train(cfg, train_set=two, valid_set=two).step == 3
    assert [b.shape[0] for b in seen] == [8, 8, 8]
    pool = torch.from_numpy(two.masks.astype(np.float32))
    which = []
    for row in (r[0] for b in seen for r in b):
        matches = [i for i in range(len(pool)) if torch.equal(row, pool[i])]
        assert len(matches) == 1
        which.append(matches[0])
    assert set(which) == {0, 1}


class SpyScaler:
    """A GradScaler stand-in that logs each call (scale, step with which optimizer, update)."""

    def __init__(self, name: str, log: list[tuple[str, str]], gan: GAN) -> None:
        self.name, self.log, self.gan = name, log, gan

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        self.log.append((self.name, "scale"))
        return loss

    def step(self, opt: torch.optim.Optimizer) -> None:
        self.log.append((self.name, "step opt_G" if opt is self.gan.opt_G else "step opt_D"))
        opt.step()

    def update(self) -> None:
        self.log.append((self.name, "update"))


def test_each_optimizer_has_its_own_scaler_updated_once_per_step(batch) -> None:
    m, x = batch
    gan = build_gan(TrainConfig(**TINY), CPU)
    calls: list[tuple[str, str]] = []
    gan.scaler = SpyScaler("G", calls, gan)  # type: ignore[assignment]
    gan.scaler_d = SpyScaler("D", calls, gan)  # type: ignore[assignment]
    loop.train_step(gan, m, x, TrainConfig(**TINY))
    d_step = [("D", "scale"), ("D", "step opt_D"), ("D", "update")]
    assert calls == [*d_step, *d_step, ("G", "scale"), ("G", "step opt_G"), ("G", "update")]


def test_real_grad_scalers_grow_per_own_optimizer_and_round_trip_the_checkpoint(
    batch,
) -> None:
    m, x = batch
    cfg = TrainConfig(**TINY)

    def scaled_gan() -> GAN:
        gan = build_gan(cfg, CPU)
        gan.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
        gan.scaler_d = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
        return gan

    gan = scaled_gan()
    loop.train_step(gan, m, x, cfg)
    # one growth per unskipped step of its own optimizer: G once, D twice (a shared scaler: 3)
    assert (gan.scaler.get_scale(), gan.scaler_d.get_scale()) == (2.0**11, 2.0**12)
    state = checkpoint_state(gan, cfg, step=1, sampler=torch.Generator(), best_val_l1=None)
    assert (state["scaler"]["scale"], state["scaler_d"]["scale"]) == (2.0**11, 2.0**12)
    fresh = scaled_gan()
    assert restore_state(fresh, state, torch.Generator()) == (1, None)
    assert (fresh.scaler.get_scale(), fresh.scaler_d.get_scale()) == (2.0**11, 2.0**12)
    # a checkpoint from before scaler_d existed: D starts from the shared scaler
    legacy = {k: v for k, v in state.items() if k != "scaler_d"}
    older = scaled_gan()
    restore_state(older, legacy, torch.Generator())
    assert older.scaler_d.get_scale() == 2.0**11
