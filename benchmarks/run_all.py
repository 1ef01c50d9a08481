"""The standard benchmark matrix on this machine, written to benchmarks/results/.

1. inference: a reference-size generator (width 64, 256x256, random weights: a dense conv net
   costs the same whatever its weights) exported to FP32 and FP16 ONNX in a temporary folder, run
   by `echogen_trt.bench.run_benchmark` on every available backend at batch 1 and 8, with the
   PyTorch eager FP32 baseline and the GEMM ceiling;
2. generate: `runtime.pipeline.run_generate` disk to disk (phantom masks as PNG files -> frames)
   against the compute-only time of the same run and the bench's compute-only figure;
3. phantom synthesis speed (benchmarks/bench_synth.py) and training iterations/s
   (benchmarks/bench_train.py), each in its own process.

Targets are reported, never asserted: ONNX Runtime FP32 on the CPU >= 1.2x PyTorch eager FP32
at batch 1 and 8; generate end to end >= 90 % of compute-only throughput.

Writes <machine>-<date>.json and .md and refreshes LATEST.md. Other work on the machine skews
everything: the load average before and after is recorded; run it on a quiet machine.

Run: `PYTHONPATH=src python benchmarks/run_all.py [--quick] [--machine NAME]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from echogen_trt.bench.ceiling import measure_ceiling
from echogen_trt.bench.env import collect_env, describe_env, load_average
from echogen_trt.bench.report import format_report, table
from echogen_trt.bench.runner import BenchConfig, run_benchmark, synthetic_masks
from echogen_trt.bench.timing import WarmUp, stop_rule, time_loop
from echogen_trt.runtime.registry import ORT_VARIANTS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SRC = HERE.parent / "src"
SCHEMA = "echogen-trt.run_all/1"
REFERENCE: dict[str, Any] = {"width": 64, "image_size": 256}
SPEEDUP_TARGET = 1.2  # ORT FP32 CPU over torch eager FP32
GENERATE_TARGET = 0.9  # generate end to end over compute-only
log = logging.getLogger("run_all")


def machine_slug(env: dict[str, Any]) -> str:
    """A file-name-safe machine name: the GPU, the Jetson board, or the CPU and its cores."""
    if env.get("gpus"):
        name = env["gpus"][0].get("name", "gpu")
    elif env.get("jetson"):
        name = env["jetson"].get("model") or "jetson"
    else:
        name = f"{env['cpu'].get('model') or 'cpu'} {env['cpu'].get('logical_cores')}c"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def export_reference(folder: Path) -> tuple[Path, Path, dict[str, Any]]:
    """FP32 and FP16 ONNX of a random-weight reference generator; returns paths and timings."""
    import torch

    from echogen_trt.artifacts.model_meta import ModelMeta
    from echogen_trt.export.fp16 import convert_file_fp16
    from echogen_trt.export.onnx_export import export_onnx
    from echogen_trt.models.factory import build_generator, generator_config

    torch.manual_seed(0)
    config = generator_config(**REFERENCE)
    meta = ModelMeta(
        experiment="ventricle_myocard_atrium",
        kept_labels=(1, 2, 3),
        input_size=(REFERENCE["image_size"],) * 2,
        model_config=config,
    )
    fp32, fp16 = folder / "reference.onnx", folder / "reference.fp16.onnx"
    first = export_onnx(build_generator(**config).eval(), fp32, meta=meta)
    second = convert_file_fp16(fp32, fp16)
    info = {
        "model_config": config,
        "weights": "random (torch.manual_seed(0))",
        "fp32": {"bytes": first.size_bytes, "export_s": round(first.seconds, 2)},
        "fp16": {"bytes": second.size_bytes, "convert_s": round(second.seconds, 2)},
    }
    return fp32, fp16, info


def inference_config(quick: bool) -> BenchConfig:
    """Batch 1 and 8 in interleaved rounds, so ORT and torch see the same machine speed."""
    if quick:
        return BenchConfig(
            batches=(1, 8), warmup=WarmUp(1, 0.0), iterations=2, rounds=2, ceiling_seconds=0.5
        )
    return BenchConfig(
        batches=(1, 8),
        warmup=WarmUp(2, 1.0),
        iterations=4,
        duration_s=2.0,
        rounds=3,
        ceiling_seconds=3.0,
    )


def _pick(report: dict[str, Any], **match: Any) -> dict[str, Any] | None:
    for r in report["results"]:
        if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def speedup_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """ORT FP32 CPU vs torch eager FP32 compute-only frames/s at each batch size: the median of
    the per-round ratios (each round measures both within seconds of each other)."""
    rows = []
    for batch in report["config"]["batches"]:
        ort = _pick(report, backend="onnxrt:cpu", precision="fp32", batch=batch, mode="compute")
        pt = _pick(report, backend="torch", batch=batch, mode="compute")
        row: dict[str, Any] = {
            "target": f"ORT FP32 CPU / torch eager FP32, batch {batch}",
            "value": None,
            "goal": SPEEDUP_TARGET,
            "met": None,
            "detail": "a configuration is missing",
        }
        if ort and pt:
            per_round = [
                a["throughput_fps"] / b["throughput_fps"]
                for a, b in zip(ort["rounds"], pt["rounds"], strict=False)
            ]
            row["value"] = float(statistics.median(per_round))
            row["met"] = row["value"] >= SPEEDUP_TARGET
            row["per_round"] = per_round
            row["detail"] = (
                f"{ort['throughput_fps']:.2f} vs {pt['throughput_fps']:.2f} frames/s pooled; "
                f"per round {', '.join(f'{x:.2f}' for x in per_round)}"
            )
        rows.append(row)
    return rows


def write_phantom_masks(folder: Path, patients: int, seed: int = 0) -> int:
    """ED and ES 4CH masks of `patients` phantoms as PNG files (raw labels 0..3)."""
    from echogen_trt.data.phantom import synth_patient

    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for index in range(1, patients + 1):
        record = synth_patient(seed, index, ("4CH",), with_sequence=False)["4CH"]
        for phase, mask in (("ED", record.ed_gt), ("ES", record.es_gt)):
            if mask is not None:
                cv2.imwrite(str(folder / f"{record.patient}_4CH_{phase}.png"), mask)
                count += 1
    return count


def compute_only_fps(model: Path, frames: int, batch: int) -> float:
    """Frames/s of `infer` alone on preprocessed batches, over about as many frames as the
    generate run: measured right next to it, so both see the same machine load."""
    from echogen_trt.runtime import model_tensors
    from echogen_trt.runtime.registry import open_backend

    with open_backend(model) as backend:
        meta = backend.meta
        masks = synthetic_masks(batch, meta.input_size)
        feeds = {
            meta.input_name: model_tensors.pack_batch(
                [model_tensors.prepare_mask(m, meta) for m in masks], meta
            )
        }

        def step() -> object:
            return backend.infer(feeds, check=False, reuse_outputs=True)

        timed = time_loop(step, WarmUp(1, 0.0), stop_rule(max(1, frames // batch), None))
    return batch * len(timed.samples_ms) / timed.total_s


def bench_generate(
    model: Path, folder: Path, patients: int, batch: int, report: dict[str, Any]
) -> dict[str, Any]:
    """Disk-to-disk generate on phantom masks vs compute-only measured just before and after."""
    from echogen_trt.runtime.pipeline import run_generate

    masks = write_phantom_masks(folder / "masks", patients)
    # the first run warms the page cache and ONNX Runtime's arenas; the second is measured
    run_generate(
        [folder / "masks"], folder / "frames", model=model, batch_size=batch, progress=False
    )
    before = compute_only_fps(model, masks, batch)
    start = time.perf_counter()
    summary = run_generate(
        [folder / "masks"], folder / "frames2", model=model, batch_size=batch, progress=False
    )
    wall = time.perf_counter() - start
    after = compute_only_fps(model, masks, batch)
    e2e_fps = summary.written / wall
    compute_fps = (before + after) / 2
    provider = summary.detail.split(",")[0].strip() or "CPUExecutionProvider"
    short = next((s for s, p in ORT_VARIANTS.items() if p == provider), "cpu")
    label = f"{summary.backend}:{short}"
    bench = _pick(report, backend=label, precision="fp32", batch=batch, mode="compute")
    return {
        "model": model.name,
        "backend": summary.backend,
        "detail": summary.detail,
        "masks": masks,
        "mask_size": "phantom masks at their native size (about 730x540) as PNG files in, "
        "256x256 PNG frames out",
        "batch": batch,
        "written": summary.written,
        "failed": len(summary.failed),
        "wall_s": wall,
        "load_s": summary.load_s,
        "generate_fps": e2e_fps,
        "compute_fps_before": before,
        "compute_fps_after": after,
        "compute_fps": compute_fps,
        "compute_fps_bench": bench["throughput_fps"] if bench else None,
        "infer_share_in_run": summary.compute_ms_per_frame / summary.ms_per_frame
        if summary.compute_ms_per_frame and summary.ms_per_frame
        else None,
        "ratio": e2e_fps / compute_fps,
    }


def generate_target(gen: dict[str, Any]) -> dict[str, Any]:
    ratio = gen["ratio"]
    return {
        "target": f"generate disk to disk / compute-only, batch {gen['batch']}",
        "value": ratio,
        "goal": GENERATE_TARGET,
        "met": ratio >= GENERATE_TARGET,
        "detail": f"{gen['generate_fps']:.2f} frames/s end to end vs {gen['compute_fps']:.2f} "
        f"compute-only (mean of {gen['compute_fps_before']:.2f} before and "
        f"{gen['compute_fps_after']:.2f} after)",
    }


def run_script(name: str, args: list[str]) -> dict[str, Any]:
    """Run benchmarks/<name> in its own process; its --json output, or the error."""
    with tempfile.TemporaryDirectory(prefix="echogen-run-all-") as tmp:
        out = Path(tmp) / "out.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        }
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(HERE / name), *args, "--json", str(out)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not out.is_file():
            return {
                "error": f"exit {done.returncode}: {done.stderr.strip()[-800:]}",
                "seconds": seconds,
            }
        data: dict[str, Any] = json.loads(out.read_text())
    data.pop("env", None)  # the run's env block covers it
    data["seconds"] = seconds
    data["command"] = f"PYTHONPATH=src python benchmarks/{name} {' '.join(args)}"
    return data


def _probes_md(probes: list[dict[str, Any]]) -> str:
    if not probes:
        return ""
    cells = ", ".join(f"{p['when']} {p['gemm_gflops']}" for p in probes)
    return (
        f"Machine speed during the run (GFLOP/s of a 1024^3 GEMM, {probes[0]['library']}): "
        f"{cells}. Absolute numbers on a shared VM move with its neighbours; the ceiling "
        "fractions in the inference table are measured in the same run."
    )


def _targets_md(targets: list[dict[str, Any]]) -> str:
    rows = [
        [
            t["target"],
            t["value"],
            t["goal"],
            {True: "yes", False: "NO", None: "-"}[t["met"]],
            t["detail"],
        ]
        for t in targets
    ]
    return table(["target", "measured", "goal", "met", "detail"], rows, markdown=True)


def _generate_md(gen: dict[str, Any]) -> str:
    keys = [
        "masks",
        "batch",
        "generate_fps",
        "compute_fps",
        "ratio",
        "compute_fps_bench",
        "infer_share_in_run",
        "load_s",
    ]
    return (
        f"`run_generate` on {gen['model']} ({gen['backend']}: {gen['detail']}), "
        f"{gen['mask_size']}.\n\n" + table(keys, [[gen[k] for k in keys]], markdown=True)
    )


def _script_md(name: str, data: dict[str, Any]) -> str:
    if "error" in data:
        return f"{name}: failed: {data['error']}"
    rows = data.get("results", [])
    if not rows:
        return f"{name}: no results"
    keys = list(rows[0])
    body = table(keys, [[r.get(k) for k in keys] for r in rows], markdown=True)
    return f"`{data['command']}` ({data['seconds']:.0f} s)\n\n{body}"


def summary_markdown(result: dict[str, Any]) -> str:
    """The human summary: targets first, then each part, then the raw-ish inference tables."""
    load = f"load average before {result['load_before']}, after {result['load_after']}"
    parts = [
        f"# Benchmarks: {result['machine']} ({result['date']})",
        f"{'Quick run' if result['quick'] else 'Full run'} of `benchmarks/run_all.py`, "
        f"{result['seconds']:.0f} s; {load} ({result['env']['cpu']['logical_cores']} logical "
        f"cores). Raw numbers: `{result['json']}`.",
        "\n".join("- " + line for line in describe_env(result["env"])),
        _probes_md(result.get("probes", [])),
        "## Targets (reported, not asserted)\n\n" + _targets_md(result["targets"]),
        "## Reference model\n\n"
        f"width 64, 256x256, random weights; FP32 {result['export']['fp32']['bytes'] / 1e6:.0f} MB,"
        f" FP16 {result['export']['fp16']['bytes'] / 1e6:.0f} MB.",
        "## generate: disk to disk vs compute-only\n\n" + _generate_md(result["generate"])
        if result.get("generate")
        else "## generate\n\nskipped",
        "## Phantom synthesis\n\n" + _script_md("bench_synth.py", result["synth"])
        if result.get("synth")
        else "## Phantom synthesis\n\nskipped",
        "## Training\n\n" + _script_md("bench_train.py", result["train"])
        if result.get("train")
        else "## Training\n\nskipped",
        "## Inference (`echogen-trt bench`)\n\n"
        + format_report(result["inference"], markdown=True),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, small cases")
    parser.add_argument("--machine", help="name in the result files (default: from the hardware)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--skip", default="", help="comma-separated: generate,synth,train")
    parser.add_argument("--no-latest", action="store_true", help="leave LATEST.md alone")
    parser.add_argument(
        "--from-json", type=Path, help="re-render the markdown of a saved result, measure nothing"
    )
    return parser.parse_args(argv)


def probe(result: dict[str, Any], when: str) -> None:
    """A 0.5 s numpy GEMM and the load average, recorded at `when`. On a VM whose cores share
    physical cores with neighbours, speed can change by 2x with no sign in the load average:
    the probes show whether the machine changed speed during the run."""
    c = measure_ceiling("cpu", "fp32", seconds=0.5, n=1024, cache=None)
    result.setdefault("probes", []).append(
        {
            "when": when,
            "gemm_gflops": round(c.gflops, 1),
            "library": c.library,
            "load_avg": load_average(),
        }
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every part of the matrix; returns the result document (not yet written)."""
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.perf_counter()
    env = collect_env()
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "quick": args.quick,
        "env": env,
        "load_before": load_average(),
    }
    probe(result, "start")
    with tempfile.TemporaryDirectory(prefix="echogen-run-all-") as tmp:
        fp32, fp16, result["export"] = export_reference(Path(tmp))
        log.info("exported %s and %s", fp32.name, fp16.name)
        report = run_benchmark([fp32, fp16], inference_config(args.quick), env=env).to_dict()
        result["inference"] = report
        result["targets"] = speedup_targets(report)
        probe(result, "after inference")
        if "generate" not in skip:
            patients = 4 if args.quick else 32
            result["generate"] = bench_generate(fp32, Path(tmp), patients, 8, report)
            result["targets"].append(generate_target(result["generate"]))
            probe(result, "after generate")
    if "synth" not in skip:
        quick = ["--patients", "6", "--full-patients", "2"] if args.quick else []
        result["synth"] = run_script("bench_synth.py", quick)
    if "train" not in skip:
        quick = ["--iters", "1", "--small-iters", "5"] if args.quick else []
        result["train"] = run_script("bench_train.py", quick)
    probe(result, "end")
    result["load_after"] = load_average()
    result["seconds"] = time.perf_counter() - started
    return result


def write_results(result: dict[str, Any], args: argparse.Namespace) -> Path:
    """<machine>-<date>.json and .md under out_dir, and LATEST.md pointing at them. The JSON
    goes first, so a failure while rendering loses no measurement (see --from-json)."""
    if "created" not in result:
        now = dt.datetime.now(dt.timezone.utc)
        result["machine"] = args.machine or machine_slug(result["env"])
        result["date"] = now.strftime("%Y-%m-%d")
        result["created"] = now.isoformat(timespec="seconds")
    stem = f"{result['machine']}-{result['date']}" + ("-quick" if result["quick"] else "")
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    result["json"] = f"{stem}.json"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    markdown = summary_markdown(result)
    (out / f"{stem}.md").write_text(markdown)
    if not args.no_latest:
        (out / "LATEST.md").write_text(
            f"<!-- copy of {stem}.md, written by benchmarks/run_all.py -->\n\n{markdown}"
        )
    return out / f"{stem}.md"


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    result = json.loads(args.from_json.read_text()) if args.from_json else run(args)
    path = write_results(result, args)
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        print(f"{t['target']}: {value} (goal {t['goal']}) {t['detail']}")
    print(f"wrote {path} and {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
