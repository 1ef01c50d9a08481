"""Build options for `build-engine`: the target presets and the rules an option set must meet.

A target (desktop GPU or Jetson) fills in whatever the user left unset: the builder workspace
and the batch sizes of the optimization profile. `resolve_options` returns the complete,
validated `BuildOptions` that the build uses and its provenance records, so a rebuild repeats it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from echogen_trt.artifacts.precision import (
    ENGINE_CHOICES,
    ENGINE_DEFAULT,
    FP16,
    validate_precision,
)
from echogen_trt.artifacts.provenance import BuildOptions
from echogen_trt.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetPreset:
    workspace_mb: int
    opt_batch: int
    max_batch: int


TARGETS = {
    "desktop": TargetPreset(workspace_mb=4096, opt_batch=8, max_batch=32),
    "jetson": TargetPreset(workspace_mb=1024, opt_batch=1, max_batch=8),
}
DEFAULT_TARGET = "desktop"


def resolve_options(
    *,
    precision: str | None = None,
    min_batch: int | None = None,
    opt_batch: int | None = None,
    max_batch: int | None = None,
    workspace_mb: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    target: str | None = None,
) -> BuildOptions:
    """Fill unset options from the target preset and validate them (ConfigError)."""
    target = target or DEFAULT_TARGET
    if target not in TARGETS:
        raise ConfigError(f"--target | unknown {target!r}. Expected one of {sorted(TARGETS)}.")
    preset = TARGETS[target]
    precision = validate_precision(precision or ENGINE_DEFAULT, "--precision", ENGINE_CHOICES)
    lo = 1 if min_batch is None else min_batch
    hi = max_batch if max_batch is not None else max(preset.max_batch, opt_batch or 0, lo)
    opt = opt_batch if opt_batch is not None else min(max(preset.opt_batch, lo), hi)
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(
            f"batch sizes | need 1 <= min <= opt <= max, got min={lo}, opt={opt}, max={hi}. "
            "Hint: e.g. --min-batch 1 --opt-batch 8 --max-batch 32."
        )
    workspace = preset.workspace_mb if workspace_mb is None else workspace_mb
    if workspace <= 0:
        raise ConfigError(f"--workspace-mb | must be positive, got {workspace}.")
    if dla_core is not None:
        if dla_core < 0:
            raise ConfigError(f"--dla-core | must be >= 0, got {dla_core}.")
        if precision != FP16:
            raise ConfigError(
                "--dla-core | the DLA runs FP16 (or INT8) only, got --precision fp32. "
                "Hint: drop --dla-core or use --precision fp16."
            )
        if (lo, hi) != (opt, opt):
            log.info("DLA needs static shapes: building for batch %d only (min=opt=max)", opt)
        lo = hi = opt
    cache = None if timing_cache is None else str(timing_cache)
    return BuildOptions(precision, lo, opt, hi, workspace, cache, dla_core, target)
