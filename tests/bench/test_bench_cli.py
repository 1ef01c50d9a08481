"""`echogen-trt bench` end to end on tiny models, and the runner's planning and bookkeeping."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from echogen_trt.bench import runner
from echogen_trt.bench.flops import flops_from_config
from echogen_trt.cli import cli
from echogen_trt.errors import BackendUnavailable, ConfigError, EchogenError

OPENVINO = importlib.util.find_spec("openvino") is not None
FAST = ["--iterations", "2", "--batch", "1,2", "--warmup", "1"]
RESULT_KEYS = {
    "model", "model_name", "backend", "detail", "device", "precision", "io", "weights",
    "input_size", "gflop_per_frame", "flops_source", "batch", "mode", "status", "reason",
    "iterations", "frames", "total_s", "cpu_s", "throughput_fps", "latency_batch_ms",
    "latency_frame_ms", "stages_ms", "achieved_gflops", "ceiling_gflops", "ceiling_fraction",
    "peak_gops", "peak_fraction", "peak_fraction_cpu", "warnings", "rounds", "round_spread_pct",
    "samples_ms", "stage_samples_ms",
}  # fmt: skip
STAT_KEYS = {"n", "mean", "median", "p90", "p95", "p99", "min", "max", "std", "cv_pct"}


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["bench", *args])


def test_bench_end_to_end_writes_json_and_prints_tables(bench_models: Path, tmp_path) -> None:
    out = tmp_path / "b.json"
    fp32, fp16 = bench_models / "tiny.onnx", bench_models / "tiny.fp16.onnx"
    result = invoke(str(fp32), str(fp16), *FAST, "--ceiling-seconds", "0", "--json", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"schema", "env", "config", "results", "ceilings", "warnings", "created"} <= set(report)
    fp32 = [p for p in report["peaks"] if p["precision"] == "fp32"]
    fp32_peak = fp32[0]["gops"] if fp32 else None
    assert report["schema"] == runner.SCHEMA
    assert report["config"]["percentile_method"] == "inverted_cdf"
    ok = [r for r in report["results"] if r["status"] == "ok"]
    # 2 ONNX files on ORT (and OpenVINO where installed) + the torch baseline, x 2 batches x 2 modes
    targets = 5 if OPENVINO else 3
    assert len(ok) == targets * 2 * 2, [r.get("reason") for r in report["results"]]
    for r in ok:
        assert set(r) == RESULT_KEYS
        assert set(r["latency_batch_ms"]) == STAT_KEYS == set(r["latency_frame_ms"])
        assert r["iterations"] == 2 and r["frames"] == 2 * r["batch"]
        assert r["throughput_fps"] == pytest.approx(r["frames"] / r["total_s"])
        assert r["latency_frame_ms"]["median"] == pytest.approx(
            r["latency_batch_ms"]["median"] / r["batch"]
        )
        assert r["achieved_gflops"] == pytest.approx(r["gflop_per_frame"] * r["throughput_fps"])
        assert r["ceiling_fraction"] == pytest.approx(r["achieved_gflops"] / r["ceiling_gflops"])
        if fp32_peak is not None:  # x86 with a C compiler: FP32 and FP16 rows vs the FMA peak
            assert r["peak_gops"] == fp32_peak
            assert r["peak_fraction"] == pytest.approx(r["achieved_gflops"] / fp32_peak)
            per_core = fp32_peak / fp32[0]["threads"]  # per CPU-second of one core
            work = r["gflop_per_frame"] * r["frames"] / r["cpu_s"]
            assert r["peak_fraction_cpu"] == pytest.approx(work / per_core)
    combos = {(r["model_name"], r["backend"], r["precision"]) for r in ok}
    assert combos == {
        ("tiny.onnx", "onnxrt:cpu", "fp32"),
        ("tiny.fp16.onnx", "onnxrt:cpu", "fp16"),
        ("tiny.onnx (random weights)", "torch", "fp32"),
    } | (
        {("tiny.onnx", "openvino", "fp32"), ("tiny.fp16.onnx", "openvino", "fp16")}
        if OPENVINO
        else set()
    )
    baseline = next(r for r in ok if r["backend"] == "torch")
    assert (
        baseline["weights"].startswith("random")
        and "random weights" in report["config"]["baseline"]
    )
    assert {(c["device"], c["precision"]) for c in report["ceilings"]} == {
        ("cpu", "fp32"),
        ("cpu", "fp16"),
    }
    for header in ("Throughput and latency per frame (ms)", "Latency per batch (ms)", "frames/s"):
        assert header in result.output
    assert "p99" in result.output and "tiny.fp16.onnx" in result.output
    assert "Ceilings" in result.output


@pytest.mark.skipif(not OPENVINO, reason="openvino not installed (extra [openvino])")
def test_openvino_rows_for_onnx_and_ir_files(bench_models: Path, tmp_path) -> None:
    """--backend openvino serves .onnx files and IRs; INT8 rows get no floating-point ceiling."""
    from dataclasses import replace

    from echogen_trt.artifacts import openvino_ir

    model = openvino_ir.load_model(bench_models / "tiny.onnx")
    meta = replace(openvino_ir.read_meta(model), precision="int8")  # routing only: not quantized
    openvino_ir.save_ir(model, tmp_path / "tiny.int8.xml", meta)
    result = invoke(
        str(bench_models / "tiny.onnx"), str(tmp_path / "tiny.int8.xml"), *FAST,
        "--backend", "openvino", "--mode", "compute", "--ceiling-seconds", "0", "--json", "-",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {(r["model_name"], r["backend"], r["precision"], r["device"]) for r in report["results"]}
    assert rows == {
        ("tiny.onnx", "openvino", "fp32", "cpu"),
        ("tiny.int8.xml", "openvino", "int8", "cpu"),
    }
    int8_rows = [r for r in report["results"] if r["precision"] == "int8"]
    assert all(r["ceiling_fraction"] is None and r["gflop_per_frame"] for r in int8_rows)
    assert any("INT8 rows have no ceiling fraction" in w for w in report["warnings"])


def test_backend_filter_no_baseline_and_json_to_stdout(bench_models: Path) -> None:
    result = invoke(
        str(bench_models / "tiny.onnx"), *FAST, "--backend", "onnxrt", "--no-baseline",
        "--no-ceiling", "--mode", "compute", "--json", "-",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {r["backend"] for r in report["results"]} == {"onnxrt:cpu"}
    assert {r["mode"] for r in report["results"]} == {"compute"}
    assert report["ceilings"] == [] and report["config"]["baseline"] == "off"
    assert all(r["ceiling_fraction"] is None for r in report["results"])


def test_rounds_are_interleaved_and_pooled(bench_models: Path, monkeypatch) -> None:
    order: list[str] = []
    real = runner.measure_target

    def spy(target, config, metas):  # record the order configurations are visited in
        order.append(target.backend)
        return real(target, config, metas)

    monkeypatch.setattr(runner, "measure_target", spy)
    config = runner.BenchConfig(
        batches=(2,), iterations=3, rounds=2, ceiling=False, modes=("compute",),
        backends=("onnxrt", "torch"),
    )  # fmt: skip
    report = runner.run_benchmark([bench_models / "tiny.onnx"], config)
    assert order == ["onnxrt:cpu", "torch", "onnxrt:cpu", "torch"]
    assert len(report.results) == 2
    for r in report.results:
        assert r["iterations"] == 6 and len(r["samples_ms"]) == 6 and r["frames"] == 12
        assert len(r["rounds"]) == 2
        assert r["throughput_fps"] == pytest.approx(12 / r["total_s"])
        # pooled time is the sum of the rounds': frames/s lies between the rounds' rates
        rates = [x["throughput_fps"] for x in r["rounds"]]
        assert min(rates) <= r["throughput_fps"] * (1 + 1e-9)
        assert r["throughput_fps"] <= max(rates) * (1 + 1e-9)
        spread = (max(rates) - min(rates)) / float(np.median(rates)) * 100
        assert r["round_spread_pct"] == pytest.approx(spread)
        assert r["latency_batch_ms"]["median"] == pytest.approx(float(np.median(r["samples_ms"])))


def test_fixed_batch_model_skips_other_batches(bench_models: Path) -> None:
    config = runner.BenchConfig(
        batches=(1, 2), iterations=1, baseline=False, ceiling=False, modes=("compute",)
    )
    report = runner.run_benchmark([bench_models / "tiny.b1.onnx"], config, env={"cpu": {}})
    by_batch = {r["batch"]: r for r in report.results}
    assert by_batch[1]["status"] == "ok"
    assert by_batch[2]["status"] == "skipped" and "fixed at 1" in by_batch[2]["reason"]


def test_plot_is_written(bench_models: Path, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot.png"
    result = invoke(
        str(bench_models / "tiny.onnx"), *FAST, "--no-baseline", "--no-ceiling", "--plot", str(png)
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_fails_before_timing(bench_models: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    called = []
    monkeypatch.setattr(runner, "run_benchmark", lambda *a, **k: called.append(1))
    result = invoke(str(bench_models / "tiny.onnx"), "--plot", "x.png")
    assert result.exit_code == 1
    assert isinstance(result.exception, BackendUnavailable)
    assert "matplotlib is not installed" in str(result.exception) and "pip install" in str(
        result.exception
    )
    assert not called


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--batch", "0,8"], "--batch"),
        (["--batch", "one"], "--batch"),
        (["--warmup", "soon"], "--warmup"),
        (["--iterations", "0"], "--iterations"),
        (["--mode", "fast"], "--mode"),
        (["--mask-size", "big"], "--mask-size"),
        (["--threads", "0"], "--threads"),
        (["--backend", "onnx"], "--backend"),
        (["--rounds", "0"], "--rounds"),
    ],
)
def test_bad_options_are_user_errors(bench_models: Path, args: list[str], match: str) -> None:
    result = invoke(str(bench_models / "tiny.onnx"), *args)
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert match in str(result.exception)


def test_missing_model_is_a_user_error(tmp_path) -> None:
    result = invoke(str(tmp_path / "nope.onnx"), *FAST)
    assert isinstance(result.exception, ConfigError)
    assert "not found" in str(result.exception)


def test_model_without_metadata_reports_why_nothing_ran(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 8, 8]) for n in "xy"]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", io[:1], io[1:])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = invoke(str(path), *FAST, "--no-ceiling")
    assert result.exit_code == 1
    assert isinstance(result.exception, EchogenError)
    assert "no configuration could be measured" in str(result.exception)
    assert "has no echogen metadata" in str(result.exception)


def test_synthetic_masks_hold_every_label() -> None:
    masks = runner.synthetic_masks(3, (64, 48), seed=1)
    assert masks.shape == (3, 64, 48) and masks.dtype.name == "uint8"
    for mask in masks:
        assert set(map(int, set(mask.ravel().tolist()))) == {0, 1, 2, 3}
    assert (runner.synthetic_masks(3, (64, 48), seed=1) == masks).all()


def test_summary_warnings_collapse_small_samples() -> None:
    results = [
        {"status": "ok", "iterations": 2, "warnings": ["a is unstable"]},
        {"status": "ok", "iterations": 3, "warnings": []},
        {"status": "ok", "iterations": 50, "warnings": []},
        {"status": "failed", "reason": "x"},
    ]
    lines = runner.summary_warnings(results)
    assert lines[0] == "a is unstable" and lines[1].startswith("Hint: run longer")
    assert "2 configuration(s) have fewer than 10 timed calls (least: 2)" in lines[2]
    assert len(lines) == 3


def test_tensorrt_engine_reports_stages_and_profile_limits(bench_models: Path, tmp_path) -> None:
    """On the fake TensorRT/CUDA of tests/fakes: per-stage times, device, FLOPs from the
    engine's model_config, and a batch above the engine's profile skipped with the reason."""
    from echogen_trt.bench.env import collect_env
    from echogen_trt.bench.report import format_report
    from echogen_trt.export.trt_build import build_engine
    from echogen_trt.runtime.backends.tensorrt import TensorRTBackend
    from fakes.fake_cuda import FakeCuda
    from fakes.fake_tensorrt import make_fake_trt

    cuda = FakeCuda()
    trt = make_fake_trt("10.3.0", cuda=cuda)
    built = build_engine(
        bench_models / "tiny.onnx", tmp_path / "m.engine", trt=trt, cuda=cuda, max_batch=2
    )
    engine = str(built.engine_path)
    target = runner.Target(engine, "tensorrt", lambda: TensorRTBackend(engine, trt=trt, cuda=cuda))
    config = runner.BenchConfig(batches=(1, 4), iterations=2, baseline=False, ceiling=False)
    results = runner.measure_target(target, config, {})
    ok = [r for r in results if r["status"] == "ok"]
    assert {(r["batch"], r["mode"]) for r in ok} == {(1, "compute"), (1, "e2e")}
    skipped = [r for r in results if r["status"] == "skipped"]
    assert [r["batch"] for r in skipped] == [4] and "maximum batch 2" in skipped[0]["reason"]
    compute = next(r for r in ok if r["mode"] == "compute")
    assert compute["device"] == "cuda" and compute["flops_source"] == "model_config"
    assert set(compute["stages_ms"]) == {"h2d", "compute", "d2h"}
    assert compute["stages_ms"]["compute"]["n"] == 2
    report = runner.BenchReport(collect_env(), runner.config_dict(config), results=results)
    text = format_report(report.to_dict())
    assert "Stages per batch (median ms)" in text and "h2d" in text
    assert "exceeds the model's maximum batch 2" in text
    assert cuda.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0}  # closed


def test_checkpoint_is_its_own_torch_baseline(tmp_path) -> None:
    """A .pt file runs on the torch backend with its trained weights: no random rebuild."""
    from echogen_trt.models.factory import build_generator, generator_config
    from echogen_trt.train.checkpoint import generator_state, save_checkpoint

    config = generator_config(width=4, image_size=32)
    state = generator_state(
        build_generator(**config), model_config=config, experiment="ventricle", step=3
    )
    ckpt = save_checkpoint(state, tmp_path / "g.pt")
    result = invoke(str(ckpt), "--iterations", "1", "--batch", "1", "--no-ceiling", "--json", "-")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(r["backend"], r["weights"]) for r in report["results"]] == [
        ("torch", "checkpoint"),
        ("torch", "checkpoint"),
    ]
    assert report["config"]["baseline"].startswith("the .pt checkpoint")
    assert report["results"][0]["flops_source"] == "model_config"
    assert report["results"][0]["gflop_per_frame"] == pytest.approx(flops_from_config(config) / 1e9)
