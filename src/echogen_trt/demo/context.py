"""What the demo's steps share: the folder layout, the `Context` they read and the `Outcome`
they return, and small helpers on the demo data.

Output paths are relative to the demo folder so the folder can be moved.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echogen_trt.demo.config import DemoConfig
from echogen_trt.fileio import sha256_file

DATA, RUN, MODELS, MASKS, FRAMES, BENCH = "data", "run", "models", "masks", "frames", "bench"
EVALUATE, CACHE = "evaluate", "cache"
ONNX, ONNX_FP16, ENGINE = "echogen.onnx", "echogen.fp16.onnx", "echogen.engine"
VIEW, PHASE = "4CH", "ED"  # PHASE: the masks `generate` is shown with
TRAIN_PHASE = "both"  # the demo trains on ED and ES frames (the reference: ED only)


@dataclass
class Outcome:
    """What a step did: status "done", "skipped" or "failed", a line for humans, its files."""

    status: str
    detail: str
    outputs: dict[str, str] = field(default_factory=dict)  # name -> path relative to out
    info: dict[str, Any] = field(default_factory=dict)  # JSON-ready numbers for the report


@dataclass
class Context:
    """What the steps share: the config, the folder, the device and upstream results."""

    cfg: DemoConfig
    out: Path
    device: str  # torch device name, e.g. "cpu" or "cuda:0"
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    clock: Callable[[], float] = time.perf_counter  # the training budget's clock (tests inject)

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    def path(self, step: str, name: str) -> Path | None:
        """Absolute path of a step's recorded output, or None when it made none."""
        rel = self.outputs.get(step, {}).get(name)
        return self.out / rel if rel else None

    def train_config(self) -> Any:
        """The TrainConfig of the demo's training run (iters is filled in by the train step)."""
        from echogen_trt.train.config import TrainConfig

        cfg = self.cfg
        return TrainConfig(
            data=str(self.out / DATA), experiment=cfg.experiment, view=VIEW, phase=TRAIN_PHASE,
            width=cfg.width or 16, image_size=cfg.image_size or 128, batch_size=cfg.batch_size,
            seed=cfg.seed, out=str(self.out / RUN), device=self.device, iters=1,
            tensorboard=False, keep_last=1, val_images=6,
        )  # fmt: skip


def fresh_dir(path: Path) -> Path:
    """An empty folder at `path` (what a step owns is cleared before it runs again)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def held_out(ctx: Context) -> list[str]:
    """The test-split patients of the demo data, as the splits module resolves them."""
    from echogen_trt.data.splits import resolve_split

    return list(resolve_split(ctx.out / DATA)["test"])


def test_pairs(ctx: Context) -> Any:
    """The held-out pairs at the model's size (masks with unkept labels zeroed, real frames)."""
    from echogen_trt.data.dataset import load_pairs

    size = ctx.infos["train"]["image_size"]
    return load_pairs(
        ctx.out / DATA, experiment=ctx.cfg.experiment, split="test", view=VIEW, phase=PHASE,
        size=(size, size),
    )  # fmt: skip


def model_digest(ctx: Context, step: str, name: str) -> str | None:
    """SHA-256 of a recorded output file (part of the next step's key), or None."""
    path = ctx.path(step, name)
    return sha256_file(path) if path is not None and path.is_file() else None
