"""What a benchmark run covers: its options (`BenchConfig`), which backend serves which file
(`plan_targets`) and the PyTorch baseline (`baseline_target`). Input masks come from
`data.phantom_masks`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.bench import stats
from echogen_trt.bench.timing import WarmUp, stop_rule
from echogen_trt.errors import ConfigError
from echogen_trt.runtime import registry
from echogen_trt.runtime.backends.base import Backend

MODES = ("compute", "e2e")
DEFAULT_BATCHES = (1, 8, 32)


@dataclass(frozen=True)
class BenchConfig:
    """What to run. `backends`: None for all available, else `registry.bench_labels()`: a backend
    name (every variant of it) or NAME:variant (one ONNX Runtime provider, say). A file runs on
    every backend that reads it (OpenVINO reads .onnx beside ONNX Runtime)."""

    batches: tuple[int, ...] = DEFAULT_BATCHES
    backends: tuple[str, ...] | None = None
    warmup: WarmUp = field(default_factory=WarmUp)
    iterations: int | None = None
    duration_s: float | None = None
    modes: tuple[str, ...] = MODES
    baseline: bool = True
    ceiling: bool = True
    ceiling_seconds: float = 1.0
    cv_warn_pct: float = stats.CV_WARN_PCT
    threads: int | None = None
    mask_size: tuple[int, int] | None = None  # None: the model's input size (no resize cost)
    seed: int = 0
    rounds: int = 1  # > 1: run the whole matrix this many times, interleaved, and pool


@dataclass
class Target:
    """One backend over one model file, not yet opened."""

    model: str
    backend: str  # label: a backend name, or NAME:variant
    make: Callable[[], Backend]
    name: str = ""  # shown in tables; default: the file name

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.model).name


def check_config(config: BenchConfig) -> None:
    """ConfigError for values no run can honour, before anything is opened."""
    if not config.batches or any(b < 1 for b in config.batches):
        raise ConfigError(f"--batch | {config.batches}. Expected positive integers, e.g. 1,8,32.")
    bad = [m for m in config.modes if m not in MODES]
    if bad or not config.modes:
        raise ConfigError(f"--mode | {bad or 'none'}. Expected some of {', '.join(MODES)}.")
    stop_rule(config.iterations, config.duration_s)  # validates both
    known = registry.bench_labels()
    unknown = [b for b in config.backends or () if b not in known]
    if unknown:
        raise ConfigError(f"--backend | {unknown} unknown. Expected some of {', '.join(known)}.")
    if config.rounds < 1:
        raise ConfigError(f"--rounds | {config.rounds}. Expected an integer >= 1.")
    if config.threads is not None and config.threads < 1:
        raise ConfigError(f"--threads | {config.threads}. Expected an integer >= 1.")
    if config.ceiling_seconds < 0 or config.cv_warn_pct < 0:
        raise ConfigError(
            f"--ceiling-seconds / --cv-warn | {config.ceiling_seconds} / {config.cv_warn_pct}. "
            "Expected values >= 0."
        )


def _wanted(label: str, kind: str, config: BenchConfig) -> bool:
    if config.backends is None:
        return True
    return label in config.backends or kind in config.backends


def plan_targets(models: Sequence[str], config: BenchConfig) -> tuple[list[Target], list[str]]:
    """(targets, notes): each model on every available backend that reads it and was asked for,
    each variant (ONNX Runtime provider) of a backend that has them."""
    usable = registry.available_backends()
    targets, notes = [], []
    opts: dict[str, Any] = {"threads": config.threads} if config.threads else {}
    for model in models:
        kind = registry.resolve_kind(model)
        if not usable[kind][0]:
            notes.append(f"{model}: {kind} unavailable ({usable[kind][1]})")
            continue
        for name in registry.readers_of(model):
            if not usable[name][0]:
                continue
            variants = registry.record(name).variants
            for label, extra in _labelled(name, variants() if variants else None):
                if _wanted(label, name, config):
                    targets.append(Target(model, label, _maker(model, name, **opts, **extra)))
    return targets, notes


def _labelled(
    name: str, variants: dict[str, dict[str, Any]] | None
) -> list[tuple[str, dict[str, Any]]]:
    if variants is None:
        return [(name, {})]
    return [(f"{name}:{variant}", extra) for variant, extra in variants.items()]


def _maker(model: str, kind: str, **opts: Any) -> Callable[[], Backend]:
    return lambda: registry.open_backend(model, kind, **opts)


def baseline_target(
    models: Sequence[str],
    targets: list[Target],
    config: BenchConfig,
    metas: dict[str, ModelMeta],
) -> tuple[Target | None, str]:
    """The eager FP32 baseline to add (or None), and a line saying what it is: the record marked
    eager_baseline (torch), on a checkpoint among the models, else rebuilt with random weights."""
    name = registry.eager_baseline_name()
    if name is None or not config.baseline or not _wanted(name, name, config):
        return None, "off"
    if any(t.backend == name for t in targets):
        suffix = registry.record(name).suffixes[0]
        return None, f"the {suffix} checkpoint on the {name} backend (trained weights)"
    ok, why = registry.backend_availability(name)
    if not ok:
        return None, f"none: {why}"
    source = next((m for m in models if registry.resolve_kind(m) != name), None)
    if source is None:
        return None, "none: no model to take model_config from"
    opts: dict[str, Any] = {"threads": config.threads} if config.threads else {}

    def make() -> Backend:
        meta = metas.get(source)
        if meta is None:  # every target failed: read the metadata on the CPU
            with registry.open_backend(source, **_cpu_opts(source)) as probe:
                meta = probe.meta
        return registry.open_eager_baseline(source, meta, **opts)

    title = registry.record(name).title
    label = f"{Path(source).name} (random weights)"
    why = f"{title} eager FP32 with random weights, rebuilt from the model_config of {source}"
    return Target(source, name, make, label), why


def _cpu_opts(model: str) -> dict[str, Any]:
    """Options that keep `model`'s own backend on the CPU (its cpu variant, if it has one)."""
    variants = registry.record(registry.resolve_kind(model)).variants
    return (variants() if variants else {}).get("cpu", {})
