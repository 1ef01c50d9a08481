"""Train, save, load and apply the segmentation U-Net that `evaluate` uses as its judge (torch).

Training is one short function (nanoGPT style): Adam with a cosine learning-rate decay on
cross-entropy plus soft Dice, batches drawn with replacement by a seeded generator, and an
augmentation so that the judge's reading is not a property of one texture (issue 24: a judge of
another seed read LA 0.0 on real frames): intensity (gain and gamma), Gaussian blur of random
strength, and small translations of frame and mask together. The same seed and data give the
same weights on the same machine.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from echogen_trt.errors import CheckpointError, DataError
from echogen_trt.evaluate.config import SegmenterSettings as SegmenterSettings
from echogen_trt.models.segmenter import N_CLASSES, SegmenterUNet
from echogen_trt.train.checkpoint import save_checkpoint

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def build_segmenter(settings: SegmenterSettings) -> SegmenterUNet:
    return SegmenterUNet(width=settings.width, depth=settings.depth, n_classes=N_CLASSES)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _intensity(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-frame gain in [0.8, 1.2] and gamma in [0.7, 1.4], clipped to [0, 1]."""
    n = x.shape[0]
    gain = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen)
    gamma = torch.exp(
        np.log(0.7) + (np.log(1.4) - np.log(0.7)) * torch.rand(n, 1, 1, 1, generator=gen)
    )
    return (x.clamp_min(0.0) ** gamma * gain).clamp(0.0, 1.0)


def _blur(frame: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of one (1, H, W) frame (reflected borders)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=frame.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.pad(frame[None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    return F.conv2d(x, k.view(1, 1, -1, 1))[0]


def _translate(a: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`a` (..., H, W) moved by (dy, dx) pixels, zeros entering (background / label 0)."""
    out = torch.zeros_like(a)
    h, w = a.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _augment(
    x: torch.Tensor, y: torch.Tensor, settings: SegmenterSettings, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Intensity, then per frame a blur of sigma in [0, settings.blur] (half the frames stay
    sharp) and a translation of up to settings.shift of the size, applied to frame and mask."""
    x = _intensity(x, gen)
    h, w = x.shape[-2:]
    max_sigma = settings.blur * max(h, w) / 128
    max_dy, max_dx = int(settings.shift * h), int(settings.shift * w)
    xs, ys = [], []
    for frame, mask in zip(x, y, strict=True):
        u = torch.rand(3, generator=gen).tolist()
        if max_sigma > 0 and u[0] < 0.5:
            frame = _blur(frame, max(0.3, 2 * u[0] * max_sigma))
        dy = round((2 * u[1] - 1) * max_dy)
        dx = round((2 * u[2] - 1) * max_dx)
        xs.append(_translate(frame, dy, dx))
        ys.append(_translate(mask, dy, dx))
    return torch.stack(xs), torch.stack(ys)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus the soft Dice loss of the foreground classes."""
    ce = F.cross_entropy(logits, target)
    probs = logits.softmax(dim=1)[:, 1:]
    onehot = F.one_hot(target, N_CLASSES).permute(0, 3, 1, 2).float()[:, 1:]
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    denom = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    soft_dice = (2 * inter + 1.0) / (denom + 1.0)
    return ce + (1.0 - soft_dice).mean()


def train_segmenter(
    images: np.ndarray,
    masks: np.ndarray,
    settings: SegmenterSettings,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    desc: str = "segmenter",
) -> SegmenterUNet:
    """A segmenter trained on frames float32 (N, H, W) in [0, 1] and label masks uint8 (N, H, W)."""
    settings.check()
    if len(images) == 0 or images.shape != masks.shape:
        raise DataError(
            f"segmenter training data | frames {images.shape}, masks {masks.shape}. Expected "
            "matching non-empty (N, H, W) arrays."
        )
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    model = build_segmenter(settings).to(dev).train()
    x_all = torch.from_numpy(np.ascontiguousarray(images, np.float32))[:, None]
    y_all = torch.from_numpy(np.ascontiguousarray(masks).astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.iters)
    start = time.perf_counter()
    bar = tqdm(range(settings.iters), desc=desc, disable=None if progress else True, leave=False)
    loss = torch.zeros(())
    for _ in bar:
        idx = torch.randint(len(x_all), (settings.batch_size,), generator=gen)
        x, y = x_all[idx], y_all[idx]
        if settings.augment:
            x, y = _augment(x, y, settings, gen)
        loss = _loss(model(x.to(dev)), y.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    log.info(
        "%s: %d iterations on %d frames in %.1f s (final loss %.3f)",
        desc, settings.iters, len(x_all), time.perf_counter() - start, loss.item(),
    )  # fmt: skip
    return model.eval()


def _batched(model: SegmenterUNet, images: np.ndarray, fn: str, batch: int) -> torch.Tensor:
    dev = next(model.parameters()).device
    outs = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch], np.float32))[:, None]
            outs.append(getattr(model, fn)(x.to(dev)).cpu())
    return torch.cat(outs)


def predict_labels(model: SegmenterUNet, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """uint8 (N, H, W) label maps for frames float32 (N, H, W) in [0, 1]."""
    logits = _batched(model.eval(), images, "forward", batch)
    labels: np.ndarray = logits.argmax(dim=1).numpy().astype(np.uint8)
    return labels


def encoder_features(model: SegmenterUNet, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """float64 (N, d) encoder embeddings of frames float32 (N, H, W) in [0, 1] (for KID)."""
    feats: np.ndarray = _batched(model.eval(), images, "features", batch).double().numpy()
    return feats


def save_segmenter(
    model: SegmenterUNet, settings: SegmenterSettings, path: Path, info: dict[str, Any]
) -> Path:
    """Write weights, settings and `info` (JSON-ready) atomically; loadable with weights_only."""
    state = {
        "format_version": FORMAT_VERSION,
        "settings": settings.to_dict(),
        "info": info,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_checkpoint(state, path)  # a full disk: one-line OutputError, not torch's


def load_segmenter(path: Path, device: str = "cpu") -> tuple[SegmenterUNet, dict[str, Any]]:
    """(model in eval mode, info) from a file `save_segmenter` wrote."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        settings = SegmenterSettings(**state["settings"])
        model = build_segmenter(settings)
        model.load_state_dict(state["state_dict"])
    except (
        OSError,
        RuntimeError,
        KeyError,
        TypeError,
        ValueError,
        EOFError,
        UnpicklingError,
    ) as err:
        raise CheckpointError(
            f"segmenter {path} | cannot be loaded ({err}). Hint: delete it; evaluate trains a "
            "new one."
        ) from err
    info: dict[str, Any] = dict(state.get("info", {}))
    return model.to(torch.device(device)).eval(), info
