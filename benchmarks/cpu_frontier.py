"""The CPU frontier table (issue #25): every CPU path of the reference model in one interleaved run,
as ratios to ONNX Runtime FP32 and to torch eager, and as fractions of the GEMM ceiling and of
the CPU's physical peak (bench.peak).

1. A reference-size generator (width 64, 256x256, random weights) is exported to FP32 ONNX, an
   INT8 OpenVINO IR (shipped recipe), an INT8 ONNX file for ONNX Runtime (split up-convolutions,
   QDQ) and, where the CPU has avx512_bf16 or AMX, a BF16 OpenVINO IR. Calibration and the gate
   use a phantom tree; with random weights the gate means nothing, so every file is forced.
2. `run_benchmark` times them all (ORT and OpenVINO on the .onnx files, OpenVINO on the IRs, the
   torch eager baseline), compute mode, batches 1 and 8, in interleaved rounds, then measures the
   GEMM ceiling and the physical peaks.
3. Thread settings: ORT FP32 batch 1 with 1 thread, the default threads, and the default without
   spinning, plus OpenVINO FP32 and BF16, interleaved call by call for `--thread-seconds`, under
   whatever load the machine has (recorded).

Writes benchmarks/results/cpu-frontier-<machine>-<date>.json and .md with the CPU flags and the
load before and after. Run: `PYTHONPATH=src python benchmarks/cpu_frontier.py [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from echogen_trt.bench.env import describe_env, load_average
from echogen_trt.bench.report import format_report, peak_lines, table
from echogen_trt.bench.runner import BenchConfig, run_benchmark
from echogen_trt.bench.timing import WarmUp
from echogen_trt.fileio import write_text_atomic
from echogen_trt.runtime.backend_choice import alternate_calls
from echogen_trt.runtime.cpu import cpu_flags
from run_all import RESULTS, machine_slug

SCHEMA = "echogen-trt.cpu_frontier/1"
REFERENCE: dict[str, Any] = {"width": 64, "image_size": 256}
SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
               "amx_tile", "amx_int8", "amx_bf16")  # fmt: skip
log = logging.getLogger("cpu_frontier")


def build_models(folder: Path, data: Path, bf16: bool) -> dict[str, str]:
    """The reference checkpoint's FP32 ONNX, INT8 IR, INT8 ONNX and (bf16) BF16 IR, forced."""
    import torch

    from echogen_trt.export.bf16 import export_bf16
    from echogen_trt.export.int8 import export_int8
    from echogen_trt.export.onnx_export import export_checkpoint
    from echogen_trt.models.factory import build_generator, generator_config
    from echogen_trt.train.checkpoint import generator_state, save_checkpoint

    ckpt = folder / "reference.pt"
    if not ckpt.exists():  # a --work folder keeps the models of an earlier run
        torch.manual_seed(0)
        config = generator_config(**REFERENCE)
        state = generator_state(
            build_generator(**config).eval(), model_config=config,
            experiment="ventricle_myocard_atrium",
        )  # fmt: skip
        save_checkpoint(state, ckpt)
    out = {"fp32": str(folder / "reference.onnx")}
    if not Path(out["fp32"]).exists():
        export_checkpoint(ckpt, out["fp32"], verify=False)
    out["int8_ov"] = str(folder / "reference.int8.xml")
    if not Path(out["int8_ov"]).exists():
        export_int8(ckpt, out["int8_ov"], calibrate=data, force=True)
    out["int8_ort"] = str(folder / "reference.int8.onnx")
    if not Path(out["int8_ort"]).exists():
        ort_int8_minmax(Path(out["fp32"]), Path(out["int8_ort"]), data)
    if bf16:
        out["bf16_ov"] = str(folder / "reference.bf16.xml")
        if not Path(out["bf16_ov"]).exists():
            export_bf16(ckpt, out["bf16_ov"], calibrate=data, force=True)
    return out


def ort_int8_minmax(fp32: Path, out: Path, data: Path) -> str:
    """The shipped ORT INT8 graph (split up-convolutions, per-channel 7-bit weights, FP32 tail)
    calibrated min-max: percentile calibration fails on a random-weight model's nearly constant
    output (README), and the calibration method does not change the graph that is timed."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from echogen_trt.export.int8 import masks_from_tree
    from echogen_trt.export.ort_int8 import _Reader, fp32_tail, split_conv_transpose

    masks = masks_from_tree(data, "train", experiment="ventricle_myocard_atrium", size=(256, 256))
    x = np.ascontiguousarray(masks[:32, None].astype(np.float32))
    split, convs = split_conv_transpose(onnx.load(str(fp32)))
    staged = out.with_name("split.onnx")
    onnx.save(split, str(staged))
    quantize_static(
        str(staged), str(out), _Reader(split.graph.input[0].name, x),
        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=fp32_tail(split, convs),
    )  # fmt: skip
    from echogen_trt.artifacts.onnx_file import load_model, read_meta, save_model, write_meta

    proto = load_model(out)
    write_meta(proto, replace(read_meta(load_model(fp32)), precision="int8"))
    save_model(proto, out)
    return str(out)


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row over ORT FP32 and over torch eager at the same batch, pooled and per round."""
    ok = [r for r in report["results"] if r.get("status") == "ok" and r.get("mode") == "compute"]
    rows = []
    for batch in sorted({r["batch"] for r in ok}):
        at = [r for r in ok if r["batch"] == batch]
        ort = next(r for r in at if r["backend"] == "onnxrt:cpu" and r["precision"] == "fp32")
        eager = next((r for r in at if r["backend"] == "torch"), None)
        for r in at:
            per_round = [a["throughput_fps"] / b["throughput_fps"]
                         for a, b in zip(r["rounds"], ort["rounds"], strict=False)]  # fmt: skip
            rows.append({
                "row": f"{r['backend']} {r['precision']} ({r['model_name']})", "batch": batch,
                "fps": round(r["throughput_fps"], 2),
                "x_ort_fp32": round(r["throughput_fps"] / ort["throughput_fps"], 2),
                "x_ort_rounds": [round(x, 2) for x in per_round],
                "x_torch": round(r["throughput_fps"] / eager["throughput_fps"], 2)
                if eager else None,
                "pct_ceiling": round(100 * r["ceiling_fraction"], 1)
                if r.get("ceiling_fraction") is not None else None,
                "pct_peak": round(100 * r["peak_fraction"], 1)
                if r.get("peak_fraction") is not None else None,
                "pct_peak_cpu": round(100 * r["peak_fraction_cpu"], 1)
                if r.get("peak_fraction_cpu") is not None else None,
            })  # fmt: skip
    return rows


def thread_study(models: dict[str, str], seconds: float) -> list[dict[str, Any]]:
    """ms per batch-1 call of ORT (1 thread / default / default without spinning) and OpenVINO,
    interleaved call by call until `seconds` have passed."""
    from echogen_trt.runtime.cpu import physical_cores
    from echogen_trt.runtime.registry import open_backend

    cores = physical_cores()
    variants: dict[str, tuple[str, str, dict[str, Any]]] = {
        "onnxrt fp32, 1 thread": (models["fp32"], "onnxrt", {"threads": 1}),
        f"onnxrt fp32, {cores} threads, spinning": (models["fp32"], "onnxrt", {"spin": True}),
        f"onnxrt fp32, {cores} threads, no spinning": (models["fp32"], "onnxrt", {"spin": False}),
        "openvino fp32 (default threads)": (models["fp32"], "openvino", {}),
        "openvino fp32, 1 thread": (models["fp32"], "openvino", {"threads": 1}),
    }
    if "bf16_ov" in models:
        variants["openvino bf16 (default threads)"] = (models["bf16_ov"], "openvino", {})
    opened = {name: open_backend(path, kind, **opts).open()
              for name, (path, kind, opts) in variants.items()}  # fmt: skip
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 256, 256)).astype(np.float32)
    load_before = load_average()
    try:
        feeds = {name: (b, {b.meta.input_name: x}) for name, b in opened.items()}
        for b, feed in feeds.values():
            b.infer(feed)  # warm-up, validated
        times = alternate_calls(feeds, seconds, min_calls=3)
    finally:
        for b in opened.values():
            b.close()
    load_after = load_average()
    return [
        {"variant": name, "calls": len(t), "median_ms": round(statistics.median(t), 1),
         "p90_ms": round(float(np.percentile(t, 90)), 1), "min_ms": round(min(t), 1),
         "load_before": load_before, "load_after": load_after}
        for name, t in times.items()
    ]  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    rep = result["bench"]
    lines = [
        f"# CPU frontier: {result['machine']} ({result['date']})",
        "",
        f"`{result['command']}`, {result['seconds']:.0f} s; load average before "
        f"{result['load_before']}, after {result['load_after']} "
        f"({rep['env']['cpu']['logical_cores']} logical cores). Raw: `{result['stem']}.json`.",
        "",
        *(f"- {line}" for line in describe_env(rep["env"])),
        f"- CPU flags: {', '.join(result['cpu_flags'])}",
        f"- {result['note']}",
        "",
        "## Every CPU path, compute, interleaved rounds (x = ratio of frames/s in the same run)",
        "",
    ]
    heads = ["path", "batch", "frames/s", "x ORT FP32", "x ORT per round", "x torch eager",
             "% GEMM ceiling", "% physical peak", "% peak per CPU-s"]  # fmt: skip
    rows = [[r["row"], r["batch"], r["fps"], r["x_ort_fp32"],
             ", ".join(f"{v:.2f}" for v in r["x_ort_rounds"]), r["x_torch"], r["pct_ceiling"],
             r["pct_peak"], r["pct_peak_cpu"]] for r in result["ratios"]]  # fmt: skip
    lines += [table(heads, rows, markdown=True), ""]
    if rep.get("peaks"):
        lines += ["## Physical peaks (bench.peak)", "", peak_lines(rep, "- "), ""]
    if result.get("threads"):
        lines += ["## Thread settings, batch 1, interleaved call by call", ""]
        heads = ["variant", "calls", "median ms", "p90 ms", "min ms"]
        rows = [[t["variant"], t["calls"], t["median_ms"], t["p90_ms"], t["min_ms"]]
                for t in result["threads"]]  # fmt: skip
        lines += [table(heads, rows, markdown=True), ""]
        lines.append(f"Load before {result['threads'][0]['load_before']}, after "
                     f"{result['threads'][0]['load_after']}.")  # fmt: skip
        lines.append("")
    lines += ["## Full bench report", "", format_report(rep, markdown=True, env=False), ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--patients", type=int, default=30, help="phantom calibration tree")
    parser.add_argument("--thread-seconds", type=float, default=30.0)
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--work", type=Path, help="folder for the models (default: temporary)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from echogen_trt.data.synth import synthesize_dataset
    from echogen_trt.export.bf16 import BF16_FLAGS

    start, load_before = time.perf_counter(), load_average()
    flags = cpu_flags()
    data = work / "phantoms"
    if not data.exists():
        synthesize_dataset(data, args.patients, views=("4CH",), with_sequence=False,
                           progress=False)  # fmt: skip
    models = build_models(work, data, bf16=bool(set(BF16_FLAGS) & flags))
    config = BenchConfig(
        batches=tuple(int(b) for b in args.batches.split(",")), modes=("compute",),
        warmup=WarmUp(1, 0.5), iterations=3, duration_s=1.5, rounds=args.rounds,
        ceiling_seconds=2.0,
    )  # fmt: skip
    report = run_benchmark(list(models.values()), config).to_dict()
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "date": dt.date.today().isoformat(),
        "command": "PYTHONPATH=src python benchmarks/cpu_frontier.py",
        "models": models,
        "bench": report,
        "ratios": ratios(report),
        "cpu_flags": sorted(f for f in flags if f in SHOWN_FLAGS),
        "note": args.note or "no note",
    }
    if args.thread_seconds > 0:
        result["threads"] = thread_study(models, args.thread_seconds)
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
    result["stem"] = stem = f"cpu-frontier-{result['machine']}-{result['date']}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out_dir / f"{stem}.json", json.dumps(result, indent=2, default=str))
    write_text_atomic(args.out_dir / f"{stem}.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
