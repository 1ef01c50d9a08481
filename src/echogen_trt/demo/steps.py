"""The demo's steps, each a thin call into the library that a user could make by hand.

data (`synth`) -> train (`train`) -> export (`export --precision both`) -> engine
(`build-engine`, when TensorRT and a GPU are there) -> generate (`generate masks/ --out frames/`)
-> evaluate (`evaluate`) -> bench (`bench`). Each step returns an `Outcome` (demo/context.py);
`run.py` decides whether to run it at all.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from echogen_trt.demo.budget import few_iterations_note, loop_seconds
from echogen_trt.demo.context import (
    BENCH,
    CACHE,
    DATA,
    ENGINE,
    EVALUATE,
    FRAMES,
    MASKS,
    MODELS,
    ONNX,
    ONNX_FP16,
    PHASE,
    RUN,
    VIEW,
    Context,
    Outcome,
    fresh_dir,
    held_out,
    test_pairs,
)
from echogen_trt.errors import BackendUnavailable, EchogenError, TrainingError
from echogen_trt.fileio import write_text_atomic
from echogen_trt.train.config import LAST_CKPT, METRICS_FILE

log = logging.getLogger(__name__)


# -- 1. data ----------------------------------------------------------------------------------
def data_step(ctx: Context) -> Outcome:
    from echogen_trt.data.synth import synthesize_dataset

    cfg = ctx.cfg
    root = fresh_dir(ctx.out / DATA)
    summary = synthesize_dataset(
        root, cfg.patients, layout="nifti", seed=cfg.seed, views=(VIEW,), with_sequence=True,
        progress=cfg.progress, workers=1,
    )  # fmt: skip
    s = summary.splits
    return Outcome(
        "done",
        f"{cfg.patients} phantom patients ({s['train']} train / {s['valid']} valid / "
        f"{s['test']} test), {summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s",
        {"data": f"{DATA}/synth.json"},
        {"splits": s, "seconds": round(summary.seconds, 2), "bytes": summary.bytes},
    )


# -- 2. train ---------------------------------------------------------------------------------
UNBOUNDED = 10**9  # iterations of a run that stops on the clock
VAL_EVERY = 50  # validation interval of a clock-stopped run (the final step is always validated)


def train_model_step(ctx: Context) -> Outcome:
    """Train on ED and ES frames until the budget's clock runs out (or for `iters` when fixed);
    the final checkpoint is the demo's model."""
    import torch

    from echogen_trt.models.factory import count_parameters
    from echogen_trt.train.data_feed import load_data
    from echogen_trt.train.gan import build_gan
    from echogen_trt.train.loop import train

    start = ctx.clock()
    cfg = ctx.cfg
    fresh_dir(ctx.out / RUN)
    tcfg = ctx.train_config()
    train_set, valid_set = load_data(tcfg)
    params, _ = count_parameters(build_gan(tcfg, torch.device("cpu")).G)
    budget_s = cfg.minutes * 60
    if cfg.iters is None:
        max_s = loop_seconds(budget_s, ctx.clock() - start)
        tcfg = replace(
            tcfg, iters=UNBOUNDED, max_seconds=max_s, val_every=VAL_EVERY, ckpt_every=UNBOUNDED,
            log_every=10,
        )  # fmt: skip
    else:
        tcfg = replace(
            tcfg, iters=cfg.iters, val_every=max(1, cfg.iters // 10), ckpt_every=cfg.iters,
            log_every=max(1, cfg.iters // 50),
        )  # fmt: skip
    summary = train(tcfg, train_set=train_set, valid_set=valid_set, clock=ctx.clock)
    seconds = ctx.clock() - start
    iters = summary.step
    few = few_iterations_note(iters, seconds, summary.load) if cfg.iters is None else None
    info = {
        "iters": iters,
        "iters_from": "fixed" if cfg.iters is not None else f"{cfg.minutes:g} min budget",
        "stopped_by": summary.stopped_by,
        "budget_s": None if cfg.iters is not None else round(budget_s, 1),
        "step_seconds": round(seconds, 2),
        "it_per_s": summary.it_per_s,
        "seconds": summary.seconds,
        "cpu_seconds": summary.cpu_seconds,
        "load": summary.load,
        "phase": tcfg.phase,
        "width": tcfg.width,
        "image_size": tcfg.image_size,
        "batch_size": tcfg.batch_size,
        "generator_params": params,
        "device": summary.device,
        "n_train": summary.n_train,
        "n_valid": summary.n_valid,
        "val": summary.val,
        "losses": summary.losses,
        "few_iterations": few,
    }
    budget = "" if cfg.iters is not None else f" in {seconds:.0f} s of a {budget_s:.0f} s budget"
    load = f", load {summary.load[0]:.1f}" if summary.load else ""
    return Outcome(
        "done",
        f"{iters} iterations{budget} (width {tcfg.width} at {tcfg.image_size}x{tcfg.image_size}, "
        f"batch {tcfg.batch_size}, ED+ES; {summary.it_per_s:.2f} it/s on {summary.device}{load})"
        + (f"; WARNING: {few}" if few else ""),
        {"checkpoint": f"{RUN}/{LAST_CKPT}", "metrics": f"{RUN}/{METRICS_FILE}"},
        info,
    )


# -- 3. export --------------------------------------------------------------------------------
def export_step(ctx: Context) -> Outcome:
    from echogen_trt.export.onnx_export import export_checkpoint
    from echogen_trt.export.verify import verify_onnx
    from echogen_trt.train.checkpoint import load_generator

    ckpt = ctx.path("train", "checkpoint")
    assert ckpt is not None, "export runs after train"
    models = fresh_dir(ctx.out / MODELS)
    results = export_checkpoint(ckpt, models / ONNX, precision="both", verify=False)
    generator, _ = load_generator(ckpt)
    masks = test_pairs(ctx).masks
    files, failed = {}, []
    for r in results:
        report = verify_onnx(r.path, reference=generator, masks=masks, raise_on_failure=False)
        checks = {c.name: c.value for c in report.checks}
        files[r.meta.precision] = {
            "path": str(r.path.relative_to(ctx.out)), "size_mb": round(r.size_bytes / 1e6, 3),
            "seconds": round(r.seconds, 2), "verified": report.ok, "checks": checks,
        }  # fmt: skip
        failed += [
            f"{r.path.name}: {c.name} {c.value} (bound {c.bound})" for c in report.failures()
        ]
    sizes = ", ".join(f"{p} {f['size_mb']:.1f} MB" for p, f in files.items())
    verdict = (
        "verified against torch" if not failed else "VERIFICATION FAILED: " + "; ".join(failed)
    )
    return Outcome(
        "done" if not failed else "failed",
        f"ONNX {sizes}; {verdict}",
        {"onnx": f"{MODELS}/{ONNX}", "onnx_fp16": f"{MODELS}/{ONNX_FP16}"},
        {"files": files, "verification_failures": failed},
    )


# -- 4. engine --------------------------------------------------------------------------------
def engine_available(ctx: Context) -> str | None:
    """None when TensorRT (with CUDA bindings) is installed, else why not (for the report)."""
    from echogen_trt.runtime.registry import backend_availability

    usable, why = backend_availability("tensorrt")
    return None if usable else f"{why}; the demo serves the ONNX model with ONNX Runtime instead"


def engine_toolchain() -> str:
    """TensorRT version and GPU, part of the engine's key (engines are tied to both)."""
    from echogen_trt.bench.env import gpus_from_smi
    from echogen_trt.runtime.registry import backend_availability

    gpus = [str(g.get("name")) for g in gpus_from_smi()]
    return f"{backend_availability('tensorrt')[1]} on {', '.join(gpus) or 'no GPU'}"


def engine_step(ctx: Context) -> Outcome:
    from echogen_trt.export.trt_build import build_engine

    onnx_fp16 = ctx.path("export", "onnx_fp16")
    assert onnx_fp16 is not None, "engine runs after export"
    engine = ctx.out / MODELS / ENGINE
    try:  # the FP16-typed ONNX gives an FP16 engine on every TensorRT from 8.5 to 11
        result = build_engine(onnx_fp16, engine, precision="fp16", max_batch=32)
    except BackendUnavailable as err:  # e.g. no CUDA GPU: nothing to build on
        return Outcome("skipped", f"{err}; the demo serves the ONNX model with ONNX Runtime")
    except EchogenError as err:
        return Outcome("failed", f"engine build failed: {err}")
    prov = result.provenance
    return Outcome(
        "done",
        f"FP16 engine {result.engine_bytes / 2**20:.1f} MB, TensorRT {prov.tensorrt_version} on "
        f"{prov.device_name}, built in {result.seconds:.0f} s",
        {"engine": f"{MODELS}/{ENGINE}", "provenance": f"{MODELS}/{result.provenance_path.name}"},
        result.to_dict(),
    )


# -- 5. generate ------------------------------------------------------------------------------
def serving_model(ctx: Context) -> Path:
    """The model `generate` serves: the TensorRT engine when one was built, else the FP32 ONNX."""
    path = ctx.path("engine", "engine") or ctx.path("export", "onnx")
    assert path is not None, "generate runs after export"
    return path


def write_masks(ctx: Context, patients: list[str]) -> Path:
    """The held-out masks as 8-bit PNGs (labels x 85, viewable) at their original size."""
    from echogen_trt.data.camus import read_view
    from echogen_trt.runtime.io import write_frame

    folder = fresh_dir(ctx.out / MASKS)
    for patient in patients:
        mask = read_view(ctx.out / DATA, patient, VIEW).mask(PHASE)
        assert mask is not None, "synthetic data keeps every mask"
        write_frame(folder / f"{patient}_{VIEW}_{PHASE}.png", (mask * 85).astype(np.uint8))
    return folder


def generate_step(ctx: Context) -> Outcome:
    from echogen_trt.runtime.pipeline import run_generate

    masks = write_masks(ctx, held_out(ctx))
    frames = fresh_dir(ctx.out / FRAMES)
    model = serving_model(ctx)
    summary = run_generate(
        [masks], frames, model=model, batch_size=8, size="model", progress=ctx.cfg.progress
    )
    if summary.failed:
        raise EchogenError(f"generate {masks} | {len(summary.failed)} failed: {summary.failed}")
    return Outcome(
        "done",
        f"{summary.written} frame(s) from {MASKS}/ with {model.name} on {summary.backend} "
        f"({summary.ms_per_frame or 0:.1f} ms/frame end to end)",
        {"masks": MASKS, "frames": FRAMES},
        {**summary.to_dict(), "model": str(model.relative_to(ctx.out))},
    )


# -- 6. evaluate ------------------------------------------------------------------------------
def evaluate_step(ctx: Context) -> Outcome:
    """`echogen-trt evaluate` on the demo data with the served ONNX model: segmentation
    consistency, synthetic-only Dice, paired metrics and KID (report in evaluate/)."""
    from echogen_trt.evaluate.protocol import EvalConfig
    from echogen_trt.evaluate.run import run_evaluation
    from echogen_trt.evaluate.segment import SegmenterSettings

    model = ctx.path("export", "onnx")
    assert model is not None, "evaluate runs after export"
    folder = fresh_dir(ctx.out / EVALUATE)
    config = replace(
        EvalConfig(), segmenter=SegmenterSettings(iters=ctx.cfg.eval_seg_iters), seed=ctx.cfg.seed,
        judges=ctx.cfg.eval_judges, judge_min_dice=ctx.cfg.eval_min_dice,
    )  # fmt: skip
    try:
        summary = run_evaluation(
            ctx.out / DATA, model, out_dir=folder, progress=ctx.cfg.progress,
            cache_dir=ctx.out / CACHE, config=config,
        )  # fmt: skip
    except TrainingError as err:  # the judges' quality gate: no Dice is better than a wrong one
        log.warning("evaluation refused: %s", err)
        return Outcome("failed", f"evaluation refused: {err}")
    dice = summary["dice"]
    lv = {k: v.get("lv") for k, v in dice.items()}
    detail = (
        f"Dice LV: {lv['consistency']:.3f} on generated frames (real frames {lv['ceiling']:.3f})"
        + (f", {lv['synthetic_only']:.3f} synthetic-only" if lv.get("synthetic_only") else "")
        + f"; KID {summary['kid']['mean']:.4f}"
    )
    keep = ("dice", "dice_noise", "dice_by_phase", "distance", "frames", "kid", "paired",
            "paired_floor", "n_test", "n_train", "split", "seconds")  # fmt: skip
    return Outcome(
        "done", detail, {"report": f"{EVALUATE}/report.md"}, {k: summary[k] for k in keep}
    )


# -- 7. bench ---------------------------------------------------------------------------------
def bench_models(ctx: Context) -> list[Path]:
    """The checkpoint (PyTorch eager baseline), both ONNX files and the engine if built."""
    names = [("train", "checkpoint"), ("export", "onnx"), ("export", "onnx_fp16")]
    names.append(("engine", "engine"))
    return [p for step, name in names if (p := ctx.path(step, name)) is not None]


def bench_step(ctx: Context) -> Outcome:
    import json

    from echogen_trt.bench.report import format_report
    from echogen_trt.bench.runner import BenchConfig, run_benchmark

    cfg = ctx.cfg
    folder = fresh_dir(ctx.out / BENCH)
    config = BenchConfig(
        batches=cfg.bench_batches, duration_s=cfg.bench_seconds, ceiling=cfg.bench_ceiling,
        ceiling_seconds=0.5,
    )  # fmt: skip
    report = run_benchmark(bench_models(ctx), config).to_dict()
    write_text_atomic(folder / "bench.json", json.dumps(report, indent=2, default=str) + "\n")
    write_text_atomic(folder / "bench.md", format_report(report, markdown=True))
    ok = [r for r in report["results"] if r.get("status") == "ok"]
    return Outcome(
        "done",
        f"{len(ok)} configurations timed ({len(report['results']) - len(ok)} not run), "
        f"batches {', '.join(map(str, cfg.bench_batches))}",
        {"json": f"{BENCH}/bench.json", "markdown": f"{BENCH}/bench.md"},
        {"ok": len(ok), "total": len(report["results"])},
    )
