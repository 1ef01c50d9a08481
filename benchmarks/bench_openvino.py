"""OpenVINO FP32 and INT8 beside ONNX Runtime FP32 and PyTorch eager on this CPU (issue #12).

1. A reference-size generator (width 64, 256x256, random weights: a dense conv net costs the same
   whatever its weights) is exported to FP32 ONNX and quantized to an INT8 OpenVINO IR with the
   shipped recipe, calibrated on a phantom CAMUS tree. Its PSNR gate is meaningless (a random
   Keras-init net outputs about 0.5 everywhere), so it is written with force=True, for timing.
2. `run_benchmark` times, in interleaved rounds (every configuration once per round): ORT FP32
   (onnxrt:cpu), OpenVINO FP32 (the same .onnx file), OpenVINO INT8 (the IR), the torch eager
   FP32 baseline, and the GEMM ceiling (best of numpy, torch, ORT MatMul at 2048^3). Ratios to ORT
   FP32 are given pooled and per round (each round measures every backend within seconds).
3. With --trained CKPT (a trained checkpoint) and its --data tree: the PSNR of INT8 against FP32
   on the tree's held-out test masks, for the shipped recipe and for NNCF's default recipe.

Writes benchmarks/results/openvino-<machine>-<date>.json and .md. The machine's load before and
after is recorded; other work on a shared machine slows every backend, interleaving keeps the
ratios fair but not noise-free.

Run: `PYTHONPATH=src python benchmarks/bench_openvino.py [--trained runs/x/best.pt --data DIR]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from echogen_trt.bench.env import describe_env, load_average
from echogen_trt.bench.report import format_report, table
from echogen_trt.bench.runner import BenchConfig, run_benchmark
from echogen_trt.bench.timing import WarmUp
from echogen_trt.fileio import write_text_atomic
from run_all import RESULTS, machine_slug

SCHEMA = "echogen-trt.bench_openvino/1"
REFERENCE: dict[str, Any] = {"width": 64, "image_size": 256}
TARGETS = {"openvino fp32": 1.0, "openvino int8": 1.5}  # x ORT FP32, issue #12
log = logging.getLogger("bench_openvino")


def reference_models(folder: Path, data: Path) -> dict[str, Any]:
    """reference.pt, reference.onnx (FP32) and reference.int8.xml (forced: random weights)."""
    import torch

    from echogen_trt.export.int8 import export_int8
    from echogen_trt.export.onnx_export import export_checkpoint
    from echogen_trt.models.factory import build_generator, generator_config
    from echogen_trt.train.checkpoint import generator_state, save_checkpoint

    torch.manual_seed(0)
    config = generator_config(**REFERENCE)
    ckpt = folder / "reference.pt"
    state = generator_state(
        build_generator(**config).eval(), model_config=config,
        experiment="ventricle_myocard_atrium",
    )  # fmt: skip
    save_checkpoint(state, ckpt)
    onnx_path = folder / "reference.onnx"
    [fp32] = export_checkpoint(ckpt, onnx_path, verify=False)
    int8 = export_int8(ckpt, folder / "reference.int8.xml", calibrate=data, force=True)
    return {
        "fp32": str(onnx_path), "int8": str(int8.path), "model_config": config,
        "fp32_bytes": fp32.size_bytes, "int8_bytes": int8.size_bytes,
        "int8_seconds": round(int8.seconds, 1), "n_calibration": int8.n_calibration,
    }  # fmt: skip


def accuracy(ckpt: Path, data: Path, folder: Path) -> list[dict[str, Any]]:
    """PSNR INT8 vs FP32 on the tree's test masks: the shipped recipe and NNCF's default."""
    from echogen_trt.export.int8 import Int8Recipe, export_int8

    recipes = {
        "shipped (mixed, overflow fix, FP32 tail)": Int8Recipe(),
        "NNCF default (performance, no overflow fix)": Int8Recipe(
            preset="performance", overflow_fix=False, fp32_tail=False
        ),
        "overflow fix only": Int8Recipe(preset="performance", fp32_tail=False),
        "mixed + overflow fix, no FP32 tail": Int8Recipe(fp32_tail=False),
    }
    out = []
    for i, (name, recipe) in enumerate(recipes.items()):
        r = export_int8(ckpt, folder / f"t{i}.int8.xml", calibrate=data, recipe=recipe, force=True)
        check = r.verify.checks[0]
        out.append(
            {"recipe": name, "psnr_db": round(check.number or 0.0, 2), "passes": check.ok,
             "n_calibration": r.n_calibration, "n_heldout": r.n_heldout}
        )  # fmt: skip
    return out


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each OpenVINO and torch row over ORT FP32 at the same batch: pooled and per round."""
    ok = [r for r in report["results"] if r.get("status") == "ok" and r.get("mode") == "compute"]
    rows = []
    for base in (r for r in ok if r["backend"] == "onnxrt:cpu"):
        for r in ok:
            if r is base or r["batch"] != base["batch"]:
                continue
            per_round = [
                a["throughput_fps"] / b["throughput_fps"]
                for a, b in zip(r["rounds"], base["rounds"], strict=False)
            ]
            label = f"{r['backend']} {r['precision']}"
            rows.append(
                {
                    "row": label, "batch": r["batch"],
                    "fps": round(r["throughput_fps"], 3),
                    "ort_fp32_fps": round(base["throughput_fps"], 3),
                    "ratio_pooled": round(r["throughput_fps"] / base["throughput_fps"], 3),
                    "ratio_rounds": [round(x, 3) for x in per_round],
                    "ratio_median_of_rounds": round(statistics.median(per_round), 3),
                    "target": TARGETS.get(label),
                }
            )  # fmt: skip
    return rows


def markdown(result: dict[str, Any]) -> str:
    rep = result["bench"]
    lines = [
        f"# OpenVINO FP32/INT8 vs ONNX Runtime: {result['machine']} ({result['date']})",
        "",
        f"`{result['command']}`, {result['seconds']:.0f} s; load average before "
        f"{result['load_before']}, after {result['load_after']} "
        f"({rep['env']['cpu']['logical_cores']} logical cores). Raw: `{result['stem']}.json`.",
        "",
        *(f"- {line}" for line in describe_env(rep["env"])),
        f"- openvino {result['versions']['openvino']}, nncf {result['versions']['nncf']}; "
        f"CPU flags: {', '.join(result['cpu_flags']) or 'none of avx512*/vnni/amx'}",
        "",
        "## Ratios to ONNX Runtime FP32 (compute, same run, interleaved rounds)",
        "",
    ]
    heads = ["row", "batch", "fps", "ORT FP32 fps", "pooled", "per round", "median", "target"]
    rows = [
        [r["row"], r["batch"], r["fps"], r["ort_fp32_fps"], r["ratio_pooled"],
         ", ".join(f"{x:.2f}" for x in r["ratio_rounds"]), r["ratio_median_of_rounds"],
         "-" if r["target"] is None else f">= {r['target']}"]
        for r in result["ratios"]
    ]  # fmt: skip
    lines += [table(heads, rows, markdown=True), ""]
    if result.get("accuracy"):
        lines += ["## INT8 accuracy (trained checkpoint, held-out test masks)", ""]
        lines.append(f"Checkpoint `{result['trained']}`, tree `{result['data']}`.")
        lines.append("")
        acc = [
            [a["recipe"], a["psnr_db"], "yes" if a["passes"] else "NO", a["n_calibration"],
             a["n_heldout"]]
            for a in result["accuracy"]
        ]  # fmt: skip
        heads = ["recipe", "PSNR vs FP32 (dB)", ">= 35 dB", "calibration", "held out"]
        lines += [table(heads, acc, markdown=True), ""]
    lines += ["## Full bench report", "", format_report(rep, markdown=True), ""]
    return "\n".join(lines)


def cpu_flags() -> list[str]:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return []
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "avx512_bf16")
    return sorted({f for f in flags if f in wanted})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trained", type=Path, help="a trained checkpoint for the PSNR figures")
    parser.add_argument("--data", type=Path, help="CAMUS tree (default: 60 phantom patients)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--work", type=Path, help="folder for the models (default: temporary)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import importlib.metadata as md

    start, load_before = time.perf_counter(), load_average()
    data = args.data
    if data is None:
        from echogen_trt.data.synth import synthesize_dataset

        data = work / "phantoms"
        synthesize_dataset(data, 60, views=("4CH",), with_sequence=False, progress=False)
    models = reference_models(work, data)
    config = BenchConfig(
        batches=tuple(int(b) for b in args.batches.split(",")),
        modes=("compute",),
        warmup=WarmUp(2, 1.0),
        iterations=4,
        duration_s=2.0,
        rounds=args.rounds,
        ceiling_seconds=3.0,
    )
    report = run_benchmark([models["fp32"], models["int8"]], config).to_dict()
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "date": dt.date.today().isoformat(),
        "command": "PYTHONPATH=src python benchmarks/bench_openvino.py",
        "models": models,
        "bench": report,
        "ratios": ratios(report),
        "cpu_flags": cpu_flags(),
        "versions": {k: md.version(k) for k in ("openvino", "nncf", "onnxruntime")},
    }
    if args.trained is not None:
        result.update(trained=str(args.trained), data=str(data))
        result["accuracy"] = accuracy(args.trained, data, work)
    result.update(
        seconds=time.perf_counter() - start, load_before=load_before, load_after=load_average()
    )
    return result


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args, work)
    result["machine"] = machine_slug(result["bench"]["env"])
    result["stem"] = stem = f"openvino-{result['machine']}-{result['date']}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out_dir / f"{stem}.json", json.dumps(result, indent=2, default=str))
    write_text_atomic(args.out_dir / f"{stem}.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
