"""`run_demo`: the whole pipeline in one call, each step skipped when it is already up to date.

Steps run in order; each logs a header line with the elapsed time, then its own progress bars.
A step whose key (parameters + upstream keys, see `state.py`) and outputs are unchanged since the
last run is reused; `fresh=True` redoes everything. The TensorRT step is skipped, with the reason,
where TensorRT or a GPU is missing, and the demo goes on with ONNX Runtime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from echogen_trt.demo import steps as st
from echogen_trt.demo.config import DemoConfig, check_config, resolve_model
from echogen_trt.demo.context import TRAIN_PHASE, Context, Outcome, model_digest
from echogen_trt.demo.report import SHEET, evaluate, write_report
from echogen_trt.demo.state import DemoState, step_key
from echogen_trt.errors import BackendUnavailable

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    """One step as the user sees it: status "done", "reused", "skipped" or "failed"."""

    name: str
    title: str
    status: str
    seconds: float
    detail: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class DemoSummary:
    """What `run_demo` did and where the report is; `to_dict()` is the CLI's --json output."""

    out: str
    report: str
    contact_sheet: str
    steps: list[StepResult]
    metrics: dict[str, dict[str, float]]
    training: dict[str, Any]
    seconds: float

    @property
    def reused(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "reused"]

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reused": self.reused}


@dataclass(frozen=True)
class Spec:
    """A step: what it reads from (deps), what its key hashes (params), what it runs."""

    name: str
    title: str
    run: Callable[[Context], Outcome]
    deps: tuple[str, ...] = ()
    params: Callable[[Context], dict[str, Any]] = lambda ctx: {}
    gate: Callable[[Context], str | None] = lambda ctx: None  # a reason to skip, or None


def _train_params(ctx: Context) -> dict[str, Any]:
    c = ctx.cfg
    budget = {"iters": c.iters} if c.iters is not None else {"minutes": c.minutes}
    model = {"width": c.width, "image_size": c.image_size, "batch_size": c.batch_size}
    return {
        "experiment": c.experiment,
        "seed": c.seed,
        "device": ctx.device_type,
        "phase": TRAIN_PHASE,
        "stop": "clock",  # runs of the probe-derived iteration count are not reused
        **model,
        **budget,
    }


SPECS = (
    Spec("data", "synthesise phantom data", st.data_step,
         params=lambda ctx: {"patients": ctx.cfg.patients, "seed": ctx.cfg.seed,
                             "sequences": True}),
    Spec("train", "train the generator", st.train_model_step, ("data",), _train_params),
    Spec("export", "export ONNX (FP32 and FP16) and verify", st.export_step, ("train",),
         lambda ctx: {"checkpoint": model_digest(ctx, "train", "checkpoint")}),
    Spec("engine", "build a TensorRT engine", st.engine_step, ("export",),
         lambda ctx: {"onnx": model_digest(ctx, "export", "onnx_fp16"),
                      "tensorrt": st.engine_toolchain()},
         gate=st.engine_available),
    Spec("generate", "generate frames for the held-out masks", st.generate_step,
         ("export", "engine"), lambda ctx: {"model": str(st.serving_model(ctx))}),
    Spec("evaluate", "evaluate the model (segmentation consistency, KID)", st.evaluate_step,
         ("export",), lambda ctx: {"onnx": model_digest(ctx, "export", "onnx"),
                                   "seg_iters": ctx.cfg.eval_seg_iters,
                                   "judges": ctx.cfg.eval_judges,
                                   "min_dice": ctx.cfg.eval_min_dice, "protocol": 2}),
    Spec("bench", "benchmark latency", st.bench_step, ("train", "export", "engine"),
         lambda ctx: {"batches": list(ctx.cfg.bench_batches),
                      "seconds": ctx.cfg.bench_seconds, "ceiling": ctx.cfg.bench_ceiling}),
)  # fmt: skip


def elapsed(seconds: float) -> str:
    """'1m05s' / '42.0s': short enough for a header line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def run_demo(
    config: DemoConfig | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
    **overrides: Any,
) -> DemoSummary:
    """Run (or bring up to date) the demo in `config.out`; returns the summary.

    Keyword overrides replace DemoConfig fields, e.g. `run_demo(out="demo", fresh=True)`.
    `clock` is what the training budget is measured on (tests pass a fake one).
    """
    cfg = replace(config or DemoConfig(), **overrides)
    check_config(cfg)
    device = _device(cfg.device)
    cfg = resolve_model(cfg, device.split(":")[0])
    out = Path(cfg.out)
    state = DemoState.open(out, cfg.fresh)
    ctx = Context(cfg, out, device, clock=clock)
    t0 = time.perf_counter()
    keys: dict[str, str] = {}
    results = []
    total = len(SPECS) + 1
    for index, spec in enumerate(SPECS, 1):
        log.info("[%d/%d] %s  (%s elapsed)", index, total, spec.title, elapsed(_since(t0)))
        results.append(_run_step(ctx, state, spec, keys))
    log.info("[%d/%d] write the report  (%s elapsed)", total, total, elapsed(_since(t0)))
    start = time.perf_counter()
    metrics, arrays = evaluate(ctx)
    summary = DemoSummary(
        out=str(out), report=str(out / "report.md"), contact_sheet=str(out / SHEET),
        steps=results, metrics=metrics, training=dict(ctx.infos.get("train", {})), seconds=0.0,
    )  # fmt: skip
    files = {"markdown": "report.md", "json": "report.json", "contact_sheet": SHEET}
    report_step = StepResult("report", "write the report", "done", 0.0, ", ".join(files.values()))
    report_step.outputs = files
    summary.steps.append(report_step)
    summary.seconds = _since(t0)
    doc = {**summary.to_dict(), "config": cfg.to_dict()}
    write_report(ctx, doc, arrays)
    report_step.seconds = time.perf_counter() - start
    summary.seconds = _since(t0)
    log.info("demo finished in %s: %s", elapsed(summary.seconds), summary.report)
    log.info("see it live: echogen-trt serve --model %s", ctx.path("export", "onnx"))
    return summary


def _since(t0: float) -> float:
    return time.perf_counter() - t0


def _device(name: str) -> str:
    """The torch device the demo trains on ("auto": CUDA when available)."""
    from echogen_trt.runtime.availability import has_module

    if not has_module("torch"):
        raise BackendUnavailable(
            "demo | needs torch to train the generator. Expected torch to be installed. "
            "Hint: `pip install 'echogen-trt[train]'`."
        )
    from echogen_trt.train.device import resolve_device

    return str(resolve_device(name))


def _run_step(ctx: Context, state: DemoState, spec: Spec, keys: dict[str, str]) -> StepResult:
    """Reuse, skip or run one step; record what it made."""
    start = time.perf_counter()
    reason = spec.gate(ctx)
    if reason is not None:
        keys[spec.name] = step_key(spec.name, {"skipped": reason})
        state.forget(spec.name)
        ctx.outputs[spec.name], ctx.infos[spec.name] = {}, {}
        log.info("    skipped: %s", reason)
        return StepResult(spec.name, spec.title, "skipped", 0.0, reason)
    key = step_key(spec.name, spec.params(ctx), [keys[d] for d in spec.deps])
    keys[spec.name] = key
    entry = state.reusable(spec.name, key)
    if entry is not None:
        ctx.outputs[spec.name], ctx.infos[spec.name] = entry["outputs"], entry["info"]
        log.info("    reused (inputs unchanged): %s", entry["detail"])
        return StepResult(spec.name, spec.title, "reused", _since(start), entry["detail"],
                          entry["outputs"])  # fmt: skip
    state.forget(spec.name)
    outcome = spec.run(ctx)
    seconds = _since(start)
    ctx.outputs[spec.name], ctx.infos[spec.name] = outcome.outputs, outcome.info
    if outcome.status == "done":
        state.record(spec.name, {"key": key, "status": "done", "detail": outcome.detail,
                                 "outputs": outcome.outputs, "info": outcome.info,
                                 "seconds": round(seconds, 2)})  # fmt: skip
    log.info("    %s in %s: %s", outcome.status, elapsed(seconds), outcome.detail)
    return StepResult(spec.name, spec.title, outcome.status, seconds, outcome.detail,
                      outcome.outputs)  # fmt: skip
