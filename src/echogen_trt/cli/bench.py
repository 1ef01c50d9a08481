"""`echogen-trt bench`: ms per frame of every backend, precision and batch size, side by side
with a PyTorch eager baseline and the machine's GEMM ceiling. A thin layer over
`echogen_trt.bench.runner.run_benchmark`."""

from __future__ import annotations

import json

import click

from echogen_trt.bench.plan import DEFAULT_BATCHES, MODES, BenchConfig
from echogen_trt.bench.stats import CV_WARN_PCT
from echogen_trt.bench.timing import DEFAULT_DURATION_S, DEFAULT_MIN_ITERATIONS, WarmUp
from echogen_trt.fileio import check_outputs, write_text_atomic
from echogen_trt.runtime.model_files import model_files
from echogen_trt.runtime.registry import bench_labels, eager_baseline_name


@click.command("bench")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--backend",
    "backends",
    help=f"Comma-separated backends: {', '.join(bench_labels())} (a name alone: every variant; "
    f"{eager_baseline_name()} is also the baseline). Default: all available.",
)
@click.option(
    "--batch",
    "batches",
    help=f"Comma-separated batch sizes. Default: {','.join(map(str, DEFAULT_BATCHES))}.",
)
@click.option(
    "--warmup",
    help="Warm-up per configuration: calls (5) or time (2s, 500ms). "
    f"Default: >= {WarmUp().iterations} calls, {WarmUp().seconds:g} s.",
)
@click.option(
    "--duration",
    type=float,
    help="Time each configuration for at least S seconds (with --iterations: both minimums, "
    f"as trtexec). Default: {DEFAULT_DURATION_S:g} s and >= {DEFAULT_MIN_ITERATIONS} calls.",
)
@click.option("--iterations", type=int, help="Timed calls per configuration (alone: exactly N).")
@click.option(
    "--mode",
    "modes",
    help="compute (infer on a preprocessed batch), e2e (uint8 masks to uint8 frames), or "
    f"{','.join(MODES)} (default).",
)
@click.option(
    "--rounds",
    type=int,
    help="Run the whole matrix N times, interleaved, and pool (robust to a drifting machine).",
)
@click.option("--no-baseline", is_flag=True, help="Skip the PyTorch eager FP32 baseline.")
@click.option("--no-ceiling", is_flag=True, help="Skip measuring the GEMM ceiling.")
@click.option(
    "--ceiling-seconds",
    type=float,
    help=f"Time per GEMM library for the ceiling. Default: {BenchConfig.ceiling_seconds:g} s.",
)
@click.option(
    "--cv-warn",
    type=float,
    help=f"Warn when latency CV exceeds this %. Default {CV_WARN_PCT:g} (trtexec uses 1 on "
    "locked GPU clocks).",
)
@click.option("--threads", type=int, help="Intra-op threads for ONNX Runtime and torch.")
@click.option("--mask-size", help="HxW of the e2e input masks. Default: the model's input size.")
@click.option(
    "--json",
    "json_path",
    help="Write every raw statistic and the environment as "
    "JSON to PATH ('-': print it instead of the tables).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Write a PNG of latency by backend and batch size (needs matplotlib).",
)
@click.option("--markdown", is_flag=True, help="Print the tables as markdown.")
def bench(
    models: tuple[str, ...],
    backends: str | None,
    batches: str | None,
    warmup: str | None,
    duration: float | None,
    iterations: int | None,
    modes: str | None,
    rounds: int | None,
    no_baseline: bool,
    no_ceiling: bool,
    ceiling_seconds: float | None,
    cv_warn: float | None,
    threads: int | None,
    mask_size: str | None,
    json_path: str | None,
    plot_path: str | None,
    markdown: bool,
) -> None:
    """Benchmark MODEL files (.onnx, .fp16.onnx, .engine, .pt) on every available backend.

    Prints trtexec-style tables: throughput (frames/s) and latency per frame and per batch
    (mean, median, p90, p95, p99, min, max), for "compute" (infer on a preprocessed batch) and
    "e2e" (uint8 masks in, uint8 frames out), the h2d/compute/d2h split where the backend
    measures it, achieved GFLOP/s as a fraction of the measured GEMM ceiling, and warnings when
    the spread is high.

    Example: echogen-trt bench model.onnx model.fp16.onnx --batch 1,8 --json bench.json
    """
    from echogen_trt.bench import plot as plot_mod
    from echogen_trt.bench.options import config_from_options, require_a_measurement
    from echogen_trt.bench.report import format_report
    from echogen_trt.bench.runner import run_benchmark

    inputs = {f"{k} {v}": v for m in models for k, v in model_files(m).items()}
    json_file = json_path if json_path != "-" else None
    check_outputs({"--json": json_file, "--plot": plot_path}, inputs=inputs)  # before the timing
    if plot_path:
        plot_mod._pyplot()  # fail before minutes of timing, not after
    config = config_from_options(
        backends=backends, batches=batches, warmup=warmup, iterations=iterations,
        duration=duration, modes=modes, rounds=rounds, baseline=not no_baseline,
        ceiling=not no_ceiling,
        ceiling_seconds=ceiling_seconds, cv_warn=cv_warn, threads=threads, mask_size=mask_size,
    )  # fmt: skip
    report = run_benchmark(list(models), config).to_dict()
    if json_path and json_path != "-":
        write_text_atomic(json_path, json.dumps(report, indent=2, default=str) + "\n")
    if json_path == "-":
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(format_report(report, markdown=markdown))
    if plot_path:
        click.echo(f"plot: {plot_mod.plot_report(report, plot_path)}", err=True)
    require_a_measurement(report)
