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
from echogen_trt.bench.baseline import RandomWeightsTorchBackend
from echogen_trt.bench.timing import WarmUp, stop_rule
from echogen_trt.errors import ConfigError
from echogen_trt.runtime.backends.base import Backend
from echogen_trt.runtime.registry import BACKENDS, available_backends, open_backend, resolve_kind

MODES = ("compute", "e2e")
DEFAULT_BATCHES = (1, 8, 32)
ORT_PROVIDERS = {  # ONNX Runtime provider -> short name used in --backend onnxrt:NAME
    "TensorrtExecutionProvider": "tensorrt",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}


@dataclass(frozen=True)
class BenchConfig:
    """What to run. `backends`: None for all available, else kinds ("onnxrt", "torch",
    "tensorrt", "openvino", or "onnxrt:cpu"/"onnxrt:cuda"/"onnxrt:tensorrt" for one provider).
    OpenVINO runs .xml files and, beside ONNX Runtime, .onnx files."""

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
    backend: str  # label: "onnxrt:cpu", "torch", "tensorrt"
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
    known = (*BACKENDS, *(f"onnxrt:{p}" for p in ORT_PROVIDERS.values()))
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


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return [p for p in ORT_PROVIDERS if p in ort.get_available_providers()]


def plan_targets(models: Sequence[str], config: BenchConfig) -> tuple[list[Target], list[str]]:
    """(targets, notes): each model on every available backend that reads it and was asked for."""
    usable = available_backends()
    targets, notes = [], []
    opts: dict[str, Any] = {"threads": config.threads} if config.threads else {}
    for model in models:
        kind = resolve_kind(model)
        if not usable[kind][0]:
            notes.append(f"{model}: {kind} unavailable ({usable[kind][1]})")
            continue
        if kind == "onnxrt":
            for provider in _ort_providers():
                label = f"onnxrt:{ORT_PROVIDERS[provider]}"
                if _wanted(label, kind, config):
                    make = _maker(model, kind, providers=[provider], **opts)
                    targets.append(Target(model, label, make))
            if usable["openvino"][0] and _wanted("openvino", "openvino", config):
                targets.append(Target(model, "openvino", _maker(model, "openvino", **opts)))
        elif _wanted(kind, kind, config):
            targets.append(Target(model, kind, _maker(model, kind, **opts)))
    return targets, notes


def _maker(model: str, kind: str, **opts: Any) -> Callable[[], Backend]:
    return lambda: open_backend(model, kind, **opts)


def baseline_target(
    models: Sequence[str],
    targets: list[Target],
    config: BenchConfig,
    metas: dict[str, ModelMeta],
) -> tuple[Target | None, str]:
    """The torch eager FP32 baseline to add (or None), and a line saying what it is."""
    if not config.baseline or not _wanted("torch", "torch", config):
        return None, "off"
    if any(t.backend == "torch" for t in targets):
        return None, "the .pt checkpoint on the torch backend (trained weights)"
    if not available_backends()["torch"][0]:
        return None, "none: torch is not installed"
    source = next((m for m in models if resolve_kind(m) != "torch"), None)
    if source is None:
        return None, "none: no model to take model_config from"
    opts: dict[str, Any] = {"threads": config.threads} if config.threads else {}

    def make() -> Backend:
        meta = metas.get(source)
        if meta is None:  # every target failed: read the metadata on the CPU
            cpu: dict[str, Any] = {"providers": ["cpu"]} if resolve_kind(source) == "onnxrt" else {}
            with open_backend(source, **cpu) as probe:
                meta = probe.meta
        return RandomWeightsTorchBackend(source, source_meta=meta, **opts)

    name = f"{Path(source).name} (random weights)"
    why = f"torch eager FP32 with random weights, rebuilt from the model_config of {source}"
    return Target(source, "torch", make, name), why
