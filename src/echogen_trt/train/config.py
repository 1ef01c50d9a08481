"""Training configuration: typed defaults in one block, JSON presets, CLI overrides.

The defaults are the reference recipe (docs/reference.md section 2). A preset file
(configs/<experiment>.json) and then command-line flags override them; unknown keys and values of
the wrong type raise ConfigError naming the key. The resolved config is saved in the run folder
(config.json) and in every checkpoint.
"""

from __future__ import annotations

import json
import logging
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from echogen_trt.artifacts.labels import DEFAULT_EXPERIMENT, kept_labels
from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.errors import ConfigError
from echogen_trt.fileio import write_bytes_atomic
from echogen_trt.option_values import check_seed
from echogen_trt.runtime.default_model import RUNS_DIR

log = logging.getLogger(__name__)

AMP_MODES = ("off", "bf16", "fp16")
DECODER_ACTS = ("relu", "leaky")
IMAGE_INTERPS = ("nearest", "area", "linear")
UPSAMPLES = ("transpose", "resize")  # models.generator.UPSAMPLES (config stays torch-free)
# "both": ED and ES frames (the CAMUS tree has both); the reference trained on ED only.
TRAIN_PHASES = ("ED", "ES", "both")
# Initial bias of G's output conv. "zero" is the Keras reference (bit for bit the paper's code);
# "target_mean" starts every pixel at the mean training target, which keeps the sigmoid out of
# saturation early on and prevents the white apex blob (issue 10; README "Which recipe").
OUTPUT_BIASES = ("target_mean", "zero")

# The run folder's layout: every reader, writer and message names these files through them.
LAST_CKPT = "last.pt"  # the newest checkpoint, what --resume continues from
BEST_CKPT = "best.pt"  # the checkpoint with the best validation score
CONFIG_FILE = "config.json"  # the resolved TrainConfig of the run
METRICS_FILE = "metrics.jsonl"  # one JSON record per logged step, appended


def default_out(experiment: str) -> str:
    """The run folder of a run given no --out: runs/<experiment>."""
    return str(Path(RUNS_DIR) / experiment)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run. Paths are strings so the config is plain JSON."""

    # data
    data: str = "data/phantom"  # CAMUS root (either layout); `echogen-trt synth` writes this one
    experiment: str = DEFAULT_EXPERIMENT  # which labels condition the generator
    view: str = "4CH"  # the reference used 4CH ED frames only
    phase: str = "ED"  # the reference's; "both" adds the ES frames (the demo's choice)
    image_interp: str = "nearest"  # the reference resized images by nearest neighbour
    split_source: str = "auto"  # official split files if present, else the reference split
    skip_bad: bool = False  # skip unreadable patients with a warning instead of failing
    # model
    width: int = 64
    image_size: int = REFERENCE_SIZE
    skips: bool = False  # U-Net skips; the reference has none
    decoder_act: str = "relu"  # "leaky" follows the paper's wording
    output_bias: str = "target_mean"  # "zero": the reference's init (README: which recipe)
    upsample: str = "transpose"  # "resize": resize-then-convolve (an option; not the reference)
    # optimisation (reference recipe)
    iters: int = 100_000
    batch_size: int = 8  # sampled with replacement
    lr_g: float = 1.3e-4
    lr_d: float = 1.5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    adam_eps: float = 1e-7  # Keras' epsilon
    adv_weight: float = 1.0
    l1_weight: float = 100.0
    seed: int = 0
    max_seconds: float | None = None  # stop on this clock (seconds from the start), if earlier
    # system
    out: str | None = None  # run folder (None: runs/<experiment>): config, metrics, *.pt, val/
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1"
    amp: str = "off"  # "off", "bf16", "fp16" (fp16 needs CUDA; uses a GradScaler)
    channels_last: bool = False
    deterministic: bool = False  # torch.use_deterministic_algorithms; bitwise resume on CPU
    # bookkeeping
    ckpt_every: int = 5_000
    keep_last: int = 3
    val_every: int = 1_000  # 0 turns validation off
    val_images: int = 4  # columns of the validation grid PNG
    log_every: int = 100
    tensorboard: bool = True  # only when the tensorboard package is installed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field_types() -> dict[str, tuple[type, ...]]:
    """Accepted runtime types per field, from the annotations (int also accepted for float)."""
    hints = typing.get_type_hints(TrainConfig)
    accepted: dict[str, tuple[type, ...]] = {}
    for name, hint in hints.items():
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = tuple(a for a in args if isinstance(a, type))
        accepted[name] = (*kinds, int) if float in kinds else kinds
    return accepted


def _type_ok(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not an int here
    return isinstance(value, kinds)


def config_from_dict(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """TrainConfig from a dict; ConfigError for unknown keys, wrong types and bad values."""
    accepted = _field_types()
    unknown = sorted(set(values) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{source} | unknown key(s) {', '.join(unknown)}. "
            f"Expected some of: {', '.join(accepted)}."
        )
    for key, value in values.items():
        if not _type_ok(value, accepted[key]):
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in accepted[key])
            raise ConfigError(
                f"{source} | key {key!r} has type {type(value).__name__} ({value!r}). "
                f"Expected {expected}."
            )
    coerced: dict[str, Any] = {
        k: float(v) if float in accepted[k] and v is not None else v for k, v in values.items()
    }
    cfg = TrainConfig(**coerced)
    check_config(cfg, source)
    return cfg


def read_preset(path: str | Path | None) -> dict[str, Any]:
    """The raw JSON object of a preset file ({} for None); ConfigError naming the file."""
    if path is None:
        return {}
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config {path} | not found. Hint: presets live in configs/<experiment>.json."
        ) from None
    except (OSError, ValueError, RecursionError) as err:  # also bad UTF-8
        raise ConfigError(f"config {path} | not readable JSON ({type(err).__name__}).") from err
    if not isinstance(values, dict):
        raise ConfigError(
            f"config {path} | top level is {type(values).__name__}. Expected a JSON object."
        )
    return values


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults <- `base` <- JSON file at `path` <- `overrides`.

    Keys of `overrides` whose value is None are ignored (unset CLI flags).
    """
    values = {**(base or {}), **read_preset(path)}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return config_from_dict(values, f"config {path}" if path is not None else "config")


def resolve_out(preset: dict[str, Any], flags: dict[str, Any]) -> str:
    """The run folder: --out, else the preset's "out", else runs/<experiment>."""
    out = flags.get("out") or preset.get("out")
    if out:
        return str(out)
    experiment = flags.get("experiment") or preset.get("experiment") or DEFAULT_EXPERIMENT
    return default_out(str(experiment))


def run_config(path: str | Path | None, flags: dict[str, Any], resume: bool = False) -> TrainConfig:
    """The config of a new or resumed run, as `echogen-trt train` resolves it.

    New run: defaults <- preset <- flags. Resume: the folder is resolved first (resolve_out),
    then defaults <- preset <- the run's own config.json <- flags, so a resumed run keeps its
    data, split and recipe even when the preset says otherwise (a warning names each such key).
    The loop then forces the architecture keys from the checkpoint. None flags are unset.
    """
    flags = {k: v for k, v in flags.items() if v is not None}
    preset = read_preset(path)
    out = resolve_out(preset, flags)
    source = f"config {path}" if path is not None else "config"
    cfg = config_from_dict({**preset, **flags, "out": out}, source)  # the preset's own errors
    previous = previous_config(out) if resume else None
    if previous is None:
        return cfg
    for key, value in preset.items():
        if key != "out" and key not in flags and key in previous and previous[key] != value:
            log.warning(
                "resume: %s=%r from %s (the preset says %r; pass the flag to change it)",
                key,
                previous[key],
                Path(out) / CONFIG_FILE,
                value,
            )
    values = {**preset, **previous, **flags, "out": out}
    return config_from_dict(values, f"run config {Path(out) / CONFIG_FILE}")


def previous_config(out: str | Path) -> dict[str, Any] | None:
    """The config.json of an existing run folder (what --resume starts from), or None."""
    path = Path(out) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # also bad UTF-8
        raise ConfigError(
            f"run config {path} | not readable JSON ({type(err).__name__}). Hint: restore it, "
            "or start a new run in another --out."
        ) from err
    if not isinstance(values, dict):
        raise ConfigError(
            f"run config {path} | top level is {type(values).__name__}. Expected the JSON "
            "object train writes. Hint: restore it, or start a new run in another --out."
        )
    return config_from_dict(values, f"run config {path}").to_dict()


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as indented JSON, atomically (a crash at run start must not
    leave a half-written config.json that the next --resume cannot read)."""
    write_bytes_atomic(path, (json.dumps(cfg.to_dict(), indent=2) + "\n").encode())


def _choice(source: str, key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(
            f"{source} | {key} {value!r} unknown. Expected one of: {', '.join(valid)}."
        )


def check_config(cfg: TrainConfig, source: str = "config") -> None:
    """Value checks that need no data and no torch: fail before any work."""
    kept_labels(cfg.experiment)
    check_seed(cfg.seed, f"{source} seed")
    _choice(source, "amp", cfg.amp, AMP_MODES)
    _choice(source, "decoder_act", cfg.decoder_act, DECODER_ACTS)
    _choice(source, "image_interp", cfg.image_interp, IMAGE_INTERPS)
    _choice(source, "output_bias", cfg.output_bias, OUTPUT_BIASES)
    _choice(source, "upsample", cfg.upsample, UPSAMPLES)
    _choice(source, "phase", cfg.phase, TRAIN_PHASES)
    if cfg.max_seconds is not None and not cfg.max_seconds > 0:
        raise ConfigError(
            f"{source} | max_seconds is {cfg.max_seconds}. Expected a positive number of seconds "
            "(or null: stop at iters)."
        )
    positive = (
        "iters",
        "batch_size",
        "width",
        "image_size",
        "ckpt_every",
        "keep_last",
        "log_every",
    )
    for key in positive:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{source} | {key} is {getattr(cfg, key)}. Expected >= 1.")
    for key in ("lr_g", "lr_d", "adam_eps"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{source} | {key} is {getattr(cfg, key)}. Expected > 0.")
    if cfg.image_size < 16:
        raise ConfigError(
            f"{source} | image_size is {cfg.image_size}. Expected a power of two >= 16 (the "
            "PatchGAN discriminator halves it four times). Hint: --image-size 64 for a quick run."
        )
    if cfg.val_every < 0 or cfg.val_images < 0:
        raise ConfigError(f"{source} | val_every and val_images must be >= 0 (0 turns them off).")


# Keys that define the network: on --resume they are taken from the checkpoint.
# output_bias too: the weights were initialised with it (checkpoints without it used "zero").
ARCH_KEYS = (
    "experiment", "width", "image_size", "skips", "decoder_act", "output_bias", "upsample",
)  # fmt: skip
CONFIG_FIELDS = tuple(f.name for f in fields(TrainConfig))
