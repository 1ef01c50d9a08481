"""What the demo runs: one frozen dataclass, with the defaults a new user gets.

Defaults are chosen for a laptop without a GPU: a reduced-width generator (width 16 at 128x128)
trained until its time budget runs out (the loop reads the clock every iteration), so the whole
run takes about ten minutes on two cores. With a CUDA GPU the full reference model (width 64 at
256x256) trains instead. `width`, `image_size` and `iters` left at None are filled in by
`resolve_model`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from echogen_trt.artifacts.labels import DEFAULT_EXPERIMENT, kept_labels
from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.errors import ConfigError
from echogen_trt.option_values import parse_ints

# (width, image_size) per device type: a CPU gets a model that learns visibly in minutes.
MODEL_BY_DEVICE = {"cpu": (16, 128), "cuda": (64, REFERENCE_SIZE)}


@dataclass(frozen=True)
class DemoConfig:
    """Every knob of `run_demo`. The hidden CLI options (tests, experiments) map onto these."""

    out: str = "demo"
    patients: int = 60  # phantom patients: 80 % train, 10 % valid, 10 % held-out test
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N"
    minutes: float = 4.5  # training budget: the loop stops on this clock (see the train step)
    experiment: str = DEFAULT_EXPERIMENT
    width: int | None = None  # None: 16 on a CPU, 64 (the reference) on a GPU
    image_size: int | None = None  # None: 128 on a CPU, 256 (the reference) on a GPU
    iters: int | None = None  # None: train until `minutes` run out; an int: exactly that many
    batch_size: int = 8  # the reference batch
    bench_batches: tuple[int, ...] = (1, 8)
    bench_seconds: float = 1.0  # timed seconds per benchmark configuration
    bench_ceiling: bool = True  # also measure the machine's GEMM ceiling (about 2 s)
    eval_seg_iters: int = 200  # training iterations of `evaluate`'s segmentation judges
    eval_judges: int = 3  # judge seeds of `evaluate` (mean +- spread)
    eval_min_dice: float = 0.7  # `evaluate`'s quality gate on the judges' real-frame Dice
    fresh: bool = False  # redo every step even when its outputs are up to date
    progress: bool = True  # tqdm bars (they disable themselves when stderr is not a TTY)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bench_batches"] = list(self.bench_batches)
        return data


def check_config(cfg: DemoConfig) -> None:
    """ConfigError naming the option, before any work is done."""
    kept_labels(cfg.experiment)
    if not 3 <= cfg.patients <= 9999:
        raise ConfigError(
            f"demo --patients | {cfg.patients}. Expected 3..9999 (train, valid and test each "
            "need at least one patient)."
        )
    if not cfg.minutes > 0:
        raise ConfigError(f"demo --minutes | {cfg.minutes}. Expected a positive number.")
    for name in ("width", "image_size", "iters"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"demo {name} | {value}. Expected an integer >= 1.")
    size = cfg.image_size
    if size is not None and (size < 32 or size & (size - 1)):
        raise ConfigError(
            f"demo image_size | {size}. Expected a power of two >= 32 (the generator halves it "
            "down to 2 pixels)."
        )
    if cfg.eval_seg_iters < 1 or cfg.eval_judges < 1:
        raise ConfigError(
            f"demo eval_seg_iters / eval_judges | {cfg.eval_seg_iters} / {cfg.eval_judges}. "
            "Expected >= 1."
        )
    if not 0.0 <= cfg.eval_min_dice < 1.0:
        raise ConfigError(f"demo eval_min_dice | {cfg.eval_min_dice}. Expected 0 <= x < 1.")
    if cfg.batch_size < 1:
        raise ConfigError(f"demo batch_size | {cfg.batch_size}. Expected an integer >= 1.")
    if not cfg.bench_batches or any(b < 1 for b in cfg.bench_batches):
        raise ConfigError(f"demo bench_batches | {cfg.bench_batches}. Expected positive sizes.")
    if cfg.bench_seconds < 0:
        raise ConfigError(f"demo bench_seconds | {cfg.bench_seconds}. Expected seconds >= 0.")


def resolve_model(cfg: DemoConfig, device_type: str) -> DemoConfig:
    """Fill width and image_size from the device type (CPU: reduced, CUDA: the reference)."""
    width, size = MODEL_BY_DEVICE.get(device_type, MODEL_BY_DEVICE["cpu"])
    return replace(
        cfg,
        width=cfg.width if cfg.width is not None else width,
        image_size=cfg.image_size if cfg.image_size is not None else size,
    )


def parse_batches(text: str) -> tuple[int, ...]:
    """'1,8' -> (1, 8): the benchmark batch sizes as `--bench-batches` gives them."""
    return parse_ints(text, "--bench-batches", "1,8")


def config_from_options(
    options: dict[str, Any], *, fresh: bool, progress: bool, bench_ceiling: bool
) -> DemoConfig:
    """The DemoConfig of the command line: options left at None keep the defaults, `out` may be a
    path and `bench_batches` the comma list as typed."""
    values: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if "out" in values:
        values["out"] = str(values["out"])
    if "bench_batches" in values:
        values["bench_batches"] = parse_batches(values["bench_batches"])
    if not bench_ceiling:
        values["bench_ceiling"] = False
    return DemoConfig(fresh=fresh, progress=progress, **values)
