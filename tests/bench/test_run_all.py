"""benchmarks/run_all.py's bookkeeping on a small real report: targets, markdown, files."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from echogen_trt.bench import runner
from echogen_trt.bench.timing import WarmUp

RUN_ALL = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_files_and_summary(run_all, bench_models: Path, tmp_path: Path) -> None:
    config = runner.BenchConfig(batches=(1, 8), iterations=1, warmup=WarmUp(0, 0.0),
                                ceiling=False, modes=("compute",))  # fmt: skip
    report = runner.run_benchmark([bench_models / "tiny.onnx"], config).to_dict()
    targets = run_all.speedup_targets(report)
    assert [t["target"] for t in targets] == [
        "ORT FP32 CPU / torch eager FP32, batch 1",
        "ORT FP32 CPU / torch eager FP32, batch 8",
    ]
    ort = next(r for r in report["results"] if r["backend"] == "onnxrt:cpu" and r["batch"] == 8)
    pt = next(r for r in report["results"] if r["backend"] == "torch" and r["batch"] == 8)
    assert targets[1]["value"] == pytest.approx(ort["throughput_fps"] / pt["throughput_fps"])
    assert targets[1]["met"] is (targets[1]["value"] >= run_all.SPEEDUP_TARGET)
    gen = {"model": "tiny.onnx", "backend": "onnxrt", "detail": "CPUExecutionProvider",
           "masks": 8, "mask_size": "native", "batch": 8, "generate_fps": 45.0,
           "compute_fps": 50.0, "compute_fps_before": 49.0, "compute_fps_after": 51.0,
           "ratio": 0.9, "compute_fps_bench": 48.0, "infer_share_in_run": 0.8,
           "load_s": 0.1}  # fmt: skip
    targets.append(run_all.generate_target(gen))
    assert targets[-1]["met"] is True and "45.00 frames/s end to end" in targets[-1]["detail"]
    result = {
        "schema": run_all.SCHEMA, "quick": True, "env": report["env"], "load_before": [0.1] * 3,
        "load_after": [0.2] * 3, "seconds": 12.0, "inference": report, "targets": targets,
        "export": {"fp32": {"bytes": 178e6}, "fp16": {"bytes": 89e6}}, "generate": gen,
        "synth": {"error": "exit 1: boom", "seconds": 1.0},
        "train": {"results": [{"case": "small", "it_per_s": 2.5}], "seconds": 3.0,
                  "command": "PYTHONPATH=src python benchmarks/bench_train.py"},
        "probes": [{"when": "start", "gemm_gflops": 90.0, "library": "numpy", "load_avg": None}],
    }  # fmt: skip
    args = argparse.Namespace(machine="test-box", out_dir=tmp_path, no_latest=False)
    md_path = run_all.write_results(result, args)
    assert md_path.name.startswith("test-box-") and md_path.name.endswith("-quick.md")
    saved = json.loads(md_path.with_suffix(".json").read_text())
    assert saved["targets"][0]["target"] == targets[0]["target"]
    markdown = md_path.read_text()
    assert "| ORT FP32 CPU / torch eager FP32, batch 8 |" in markdown
    assert "bench_synth.py: failed: exit 1: boom" in markdown
    assert "Machine speed during the run" in markdown and "start 90.0" in markdown
    assert "Throughput and latency per frame (ms)" in markdown
    latest = (tmp_path / "LATEST.md").read_text()
    assert md_path.name in latest and markdown in latest


def test_machine_slug(run_all) -> None:
    cpu = {"cpu": {"model": "AMD EPYC 7B13", "logical_cores": 2}, "gpus": [], "jetson": None}
    assert run_all.machine_slug(cpu) == "amd-epyc-7b13-2c"
    gpu = {**cpu, "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}
    assert run_all.machine_slug(gpu) == "nvidia-h100-80gb-hbm3"
    jetson = {**cpu, "jetson": {"model": "NVIDIA Jetson AGX Orin Developer Kit"}}
    assert run_all.machine_slug(jetson) == "nvidia-jetson-agx-orin-developer-kit"
