"""`run_benchmark`: every backend, precision and batch size for some model files, side by side
with a PyTorch eager FP32 baseline and the machine's GEMM ceiling, all through the runtime API.

Two figures per configuration:
- "compute": `backend.infer` on an already preprocessed batch (what trtexec times, plus the
  Python call), with per-stage times (h2d / compute / d2h) where the backend reports them;
- "e2e": uint8 label masks in -> `model_tensors.prepare_mask` -> `mask_to_echo.infer_frames`
  (pack, infer, frames) -> uint8 frames, i.e. what a caller of the runtime pays per batch.

With `rounds` > 1 the whole matrix is run that many times, one configuration after the other in
each round, and each configuration's rounds are pooled: a machine whose speed drifts (a shared
VM, thermal throttling) then slows every configuration alike instead of whichever ran at the bad
moment, and the per-round throughputs show the drift.

Result records and the report layout are documented in benchmarks/README.md (schema
"echogen-trt.bench/1").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.precision import INT8, PRECISIONS
from echogen_trt.bench import ceiling as ceiling_mod
from echogen_trt.bench import stats
from echogen_trt.bench.env import collect_env
from echogen_trt.bench.flops import flops_from_config, flops_from_onnx
from echogen_trt.bench.plan import (
    DEFAULT_BATCHES,
    MODES,
    BenchConfig,
    Target,
    baseline_target,
    check_config,
    plan_targets,
)
from echogen_trt.bench.timing import Timed, stop_rule, time_loop
from echogen_trt.data.phantom_masks import phantom_masks as synthetic_masks
from echogen_trt.errors import ConfigError, EchogenError
from echogen_trt.runtime import model_tensors
from echogen_trt.runtime.backends.base import Backend
from echogen_trt.runtime.mask_to_echo import batch_limits, infer_frames
from echogen_trt.runtime.registry import ONNX_SUFFIX, describe_suffixes

__all__ = [
    "DEFAULT_BATCHES",
    "MODES",
    "SCHEMA",
    "BenchConfig",
    "BenchReport",
    "run_benchmark",
    "synthetic_masks",
]

log = logging.getLogger(__name__)

SCHEMA = "echogen-trt.bench/1"
FEW_SAMPLES = 10


@dataclass
class BenchReport:
    """Everything one run measured; `to_dict()` is the --json document."""

    env: dict[str, Any]
    config: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    ceilings: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}


def flops_per_frame(model: str, meta: ModelMeta) -> tuple[float | None, str]:
    """(FLOPs per frame, how counted): from the ONNX graph, else from model_config."""
    if Path(model).suffix.lower() == ONNX_SUFFIX:
        try:
            return flops_from_onnx(model), "onnx conv MACs"
        except EchogenError as err:
            log.warning("FLOP count from %s failed (%s); trying model_config", model, err)
    if meta.model_config:
        try:
            return flops_from_config(meta.model_config), "model_config"
        except EchogenError as err:
            return None, f"unknown ({err})"
    return None, "unknown (no ONNX graph, no model_config)"


def _describe(target: Target, backend: Backend, meta: ModelMeta) -> dict[str, Any]:
    providers = getattr(backend, "providers", None)
    return {
        "model": target.model,
        "model_name": target.name,
        "backend": target.backend,
        "detail": ", ".join(providers) if providers else "",
        "device": backend.compute_device,
        "precision": meta.precision,
        "io": meta.io,
        "weights": backend.weights,
        "input_size": list(meta.input_size),
    }


def _batch_problem(backend: Backend, meta: ModelMeta, batch: int) -> str | None:
    """Why this backend cannot run `batch` (static batch dim, engine profile), else None."""
    fixed, most = batch_limits(backend)
    if fixed and fixed != batch:
        return f"the model's batch dimension is fixed at {fixed}"
    if most is not None and batch > most:
        return f"exceeds the model's maximum batch {most}"
    return None


def _compute_step(backend: Backend, meta: ModelMeta, masks: np.ndarray) -> Callable[[], object]:
    prepared = [model_tensors.prepare_mask(m, meta) for m in masks]
    feeds = {meta.input_name: model_tensors.pack_batch(prepared, meta)}
    backend.infer(feeds, reuse_outputs=True)  # validated once, then timed without checks
    return lambda: backend.infer(feeds, check=False, reuse_outputs=True)


def _e2e_step(backend: Backend, meta: ModelMeta, masks: np.ndarray) -> Callable[[], object]:
    def step(check: bool = False) -> np.ndarray:
        prepared = [model_tensors.prepare_mask(m, meta) for m in masks]
        return infer_frames(backend, prepared, check=check)

    step(check=True)  # validated once, then timed without checks
    return step


def _record(
    info: dict[str, Any], batch: int, mode: str, timed: Timed, config: BenchConfig
) -> dict[str, Any]:
    per_batch = stats.summarize(timed.samples_ms)
    frames = batch * per_batch.n
    fps = stats.throughput(frames, timed.total_s)
    what = f"{info['model_name']} {info['backend']} batch {batch} {mode} latency"
    warnings = [w for w in [stats.cv_warning(per_batch, what, config.cv_warn_pct)] if w]
    gflop = info.get("gflop_per_frame")
    per_frame = per_batch.scaled(batch)
    return {
        **info,
        "batch": batch,
        "mode": mode,
        "status": "ok",
        "reason": "",
        "iterations": per_batch.n,
        "frames": frames,
        "total_s": timed.total_s,
        "throughput_fps": fps,
        "latency_batch_ms": per_batch.to_dict(),
        "latency_frame_ms": per_frame.to_dict(),
        "stages_ms": {k: stats.summarize(v).to_dict() for k, v in timed.stages_ms.items() if v},
        "achieved_gflops": gflop * fps if gflop else None,
        "ceiling_gflops": None,
        "ceiling_fraction": None,
        "rounds": [{"throughput_fps": fps, "median_frame_ms": per_frame.median}],
        "round_spread_pct": None,
        "samples_ms": list(timed.samples_ms),
        "stage_samples_ms": {k: list(v) for k, v in timed.stages_ms.items()},
        "warnings": warnings,
    }


_RECORD_KEYS = frozenset(
    {
        "batch", "mode", "status", "reason", "iterations", "frames", "total_s", "throughput_fps",
        "latency_batch_ms", "latency_frame_ms", "stages_ms", "achieved_gflops", "ceiling_gflops",
        "ceiling_fraction", "rounds", "round_spread_pct", "samples_ms", "stage_samples_ms",
        "warnings",
    }
)  # fmt: skip  # what _record adds to a configuration's description


def merge_rounds(records: list[dict[str, Any]], config: BenchConfig) -> list[dict[str, Any]]:
    """One record per configuration: the rounds' samples pooled (stats, throughput = all
    frames / all timed seconds), each round's throughput kept in "rounds"."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        key = (r["model"], r["model_name"], r["backend"], r.get("batch"), r.get("mode"))
        groups.setdefault(key, []).append(r)
    return [_merge(group, config) for group in groups.values()]


def _merge(group: list[dict[str, Any]], config: BenchConfig) -> dict[str, Any]:
    ok = [r for r in group if r["status"] == "ok"]
    if len(group) == 1 or not ok:
        return group[0]
    first = ok[0]
    timed = Timed(
        [s for r in ok for s in r["samples_ms"]],
        sum(r["total_s"] for r in ok),
        {
            k: [v for r in ok for v in r["stage_samples_ms"].get(k, [])]
            for k in first["stage_samples_ms"]
        },
    )
    info = {k: v for k, v in first.items() if k not in _RECORD_KEYS}
    merged = _record(info, first["batch"], first["mode"], timed, config)
    merged["rounds"] = [x for r in ok for x in r["rounds"]]
    fps = [x["throughput_fps"] for x in merged["rounds"]]
    merged["round_spread_pct"] = (max(fps) - min(fps)) / float(np.median(fps)) * 100
    what = f"{first['model_name']} {first['backend']} batch {first['batch']} {first['mode']}"
    if merged["round_spread_pct"] > config.cv_warn_pct:
        merged["warnings"].append(
            f"{what}: throughput differs by {merged['round_spread_pct']:.0f}% between rounds: "
            "the machine's speed changed during the run."
        )
    if len(ok) < len(group):
        bad = next(r for r in group if r["status"] != "ok")
        merged["warnings"].append(
            f"{what}: {len(group) - len(ok)} round(s) failed: {bad['reason']}"
        )
    return merged


def measure_one(
    backend: Backend,
    meta: ModelMeta,
    info: dict[str, Any],
    batch: int,
    mode: str,
    config: BenchConfig,
) -> dict[str, Any]:
    """One (batch, mode) configuration of an opened backend."""
    masks = synthetic_masks(batch, config.mask_size or meta.input_size, config.seed)
    rule = stop_rule(config.iterations, config.duration_s)
    try:
        if mode == "compute":
            timed = time_loop(
                _compute_step(backend, meta, masks), config.warmup, rule, backend.timings
            )
        else:
            timed = time_loop(_e2e_step(backend, meta, masks), config.warmup, rule)
    except EchogenError as err:
        return {**info, "batch": batch, "mode": mode, "status": "failed", "reason": str(err)}
    result = _record(info, batch, mode, timed, config)
    log.info(
        "%s %s %s batch %d %s: %.2f ms/frame (median), %.1f frames/s",
        info["model_name"],
        info["backend"],
        info["precision"],
        batch,
        mode,
        result["latency_frame_ms"]["median"],
        result["throughput_fps"],
    )
    return result


def measure_target(
    target: Target, config: BenchConfig, metas: dict[str, ModelMeta]
) -> list[dict[str, Any]]:
    """Open one target and run every batch size and mode on it."""
    base = {"model": target.model, "model_name": target.name, "backend": target.backend}
    try:
        backend = target.make()
        backend.open()
    except EchogenError as err:
        log.warning("%s on %s: %s", target.model, target.backend, err)
        return [{**base, "status": "failed", "reason": str(err)}]
    try:
        meta = backend.meta
        metas.setdefault(target.model, meta)
        info = _describe(target, backend, meta)
        flops, how = flops_per_frame(target.model, meta)
        info.update(gflop_per_frame=flops / 1e9 if flops else None, flops_source=how)
        out = []
        for batch in config.batches:
            problem = _batch_problem(backend, meta, batch)
            if problem:
                out.append({**info, "batch": batch, "status": "skipped", "reason": problem})
                continue
            out.extend(measure_one(backend, meta, info, batch, m, config) for m in config.modes)
        return out
    finally:
        backend.close()


def add_ceilings(report: BenchReport, config: BenchConfig) -> None:
    """Measure the GEMM ceiling once per (device, precision) seen, and set each fraction."""
    ok = [r for r in report.results if r["status"] == "ok"]
    seen = {(r["device"], r["precision"]) for r in ok if r["precision"] in PRECISIONS}
    if any(r["precision"] == INT8 for r in ok):
        report.warnings.append(
            "INT8 rows have no ceiling fraction: the ceiling is a floating-point GEMM. Compare "
            "their throughput with the FP32 rows of the same run."
        )
    found: dict[tuple[str, str], float] = {}
    cache: dict[str, ceiling_mod.Ceiling] = {}  # each library's GEMM is measured once
    for device, precision in sorted(seen):
        try:
            c = ceiling_mod.measure_ceiling(
                device,
                precision,
                seconds=config.ceiling_seconds,
                threads=config.threads,
                cache=cache,
            )
        except EchogenError as err:
            report.warnings.append(f"ceiling {device}/{precision}: {err}")
            continue
        report.ceilings.append(c.to_dict())
        found[(device, precision)] = c.gflops
    for r in report.results:
        limit = found.get((r.get("device", ""), r.get("precision", "")))
        if r["status"] == "ok" and limit and r["achieved_gflops"]:
            r["ceiling_gflops"] = limit
            r["ceiling_fraction"] = r["achieved_gflops"] / limit
    over = [r for r in report.results if (r.get("ceiling_fraction") or 0) > 1.0]
    if over:
        report.warnings.append(
            f"{len(over)} configuration(s) exceed the measured GEMM ceiling (up to "
            f"{max(r['ceiling_fraction'] for r in over):.0%}): the ceiling was measured while the "
            "machine was busier than during those runs, or no installed GEMM reaches the conv "
            "kernels' speed. Treat the ceiling as a lower bound of the limit here."
        )


def _load_warning(env: dict[str, Any]) -> str | None:
    load, cores = env.get("load_avg"), env["cpu"].get("logical_cores") or 1
    if load and load[0] > 0.5 * cores:
        return (
            f"machine busy: 1-minute load {load[0]} on {cores} logical cores before the run. "
            "Numbers will be slower and noisier than on an idle machine."
        )
    return None


def run_benchmark(
    models: Sequence[str | Path],
    config: BenchConfig | None = None,
    *,
    env: dict[str, Any] | None = None,
) -> BenchReport:
    """Benchmark `models` (files) on every available backend; see the module docstring."""
    config = config or BenchConfig()
    check_config(config)
    paths = [str(m) for m in models]
    if not paths:
        raise ConfigError(f"bench | no model files given. Expected at least {describe_suffixes()}.")
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"model {p} | not found. Expected {describe_suffixes()}.")
    report = BenchReport(collect_env() if env is None else env, config_dict(config))
    report.created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    report.warnings.extend(w for w in [_load_warning(report.env)] if w)
    targets, notes = plan_targets(paths, config)
    report.warnings.extend(notes)
    metas: dict[str, ModelMeta] = {}  # filled as targets open; the baseline reads it lazily
    base, why = baseline_target(paths, targets, config, metas)
    report.config["baseline"] = why
    everything = [*targets, *([base] if base is not None else [])]
    raw = []
    for index in range(config.rounds):  # interleaved: each round visits every configuration
        if config.rounds > 1:
            log.info("round %d of %d", index + 1, config.rounds)
        for target in everything:
            raw.extend(measure_target(target, config, metas))
    report.results = merge_rounds(raw, config)
    if config.ceiling:
        add_ceilings(report, config)
    report.warnings.extend(summary_warnings(report.results))
    return report


def summary_warnings(results: list[dict[str, Any]]) -> list[str]:
    """The per-result CV warnings, plus one line each for the CV hint and small samples."""
    out = [w for r in results for w in r.get("warnings", [])]
    if out:
        out.append(stats.CV_HINT)
    few = [r for r in results if r.get("status") == "ok" and r["iterations"] < FEW_SAMPLES]
    if few:
        least = min(r["iterations"] for r in few)
        out.append(
            f"{len(few)} configuration(s) have fewer than {FEW_SAMPLES} timed calls (least: "
            f"{least}): their p90/p95/p99 are the largest samples. Use --duration for more."
        )
    return out


def config_dict(config: BenchConfig) -> dict[str, Any]:
    """The report's "config" block: the options plus the stopping rule and percentile method."""
    data = asdict(config)
    rule = stop_rule(config.iterations, config.duration_s)
    data["stop_rule"] = asdict(rule)
    data["percentile_method"] = stats.PERCENTILE_METHOD
    return data
