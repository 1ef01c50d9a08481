"""`echogen-trt serve` under bounded load: dynamic batching vs batch-1 serving, same machine.

Each case starts `python -m echogen_trt serve` on 127.0.0.1 (its own process, a free port), warms
it up, then runs C concurrent clients x R requests (keep-alive connections, one PNG mask each,
`echogen_trt.serve.load`). Reported per case: throughput (frames/s), p50/p95 latency, errors, and
the mean batch size the server ran (from /metrics). Cases alternate (batch-1, dynamic, batch-1,
dynamic, ...) so a noisy neighbour hits both alike; the ratio is dynamic / batch-1 throughput.

Run: `python benchmarks/serve_load.py [--model demo/models/echogen.onnx] [--rounds 2]`.
Without --model it exports a random-weight generator of the demo's CPU size (width 16, 128x128;
speed does not depend on the weights). Writes benchmarks/results/serve-load-DATE.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))  # the tests' server start/stop helpers

from serve_helpers import start_server, stop_server  # noqa: E402

from echogen_trt.serve.load import run_load, scrape  # noqa: E402
from echogen_trt.serve.phantom import PhantomShape, phantom_mask  # noqa: E402


def random_model(folder: Path, width: int, size: int) -> Path:
    """A random-weight generator exported to ONNX (needs the train extra)."""
    import torch

    from echogen_trt.artifacts.model_meta import meta_from_checkpoint_info
    from echogen_trt.export.onnx_export import export_onnx
    from echogen_trt.models.factory import build_generator, generator_config

    torch.manual_seed(0)
    config = generator_config(width=width, image_size=size)
    generator = build_generator(**config).eval()
    info = {"image_size": size, "experiment": "ventricle_myocard_atrium", "kept_labels": [1, 2, 3]}
    info["model_config"] = config
    path = folder / f"random-w{width}-{size}.onnx"
    export_onnx(generator, path, meta=meta_from_checkpoint_info(info))
    return path


def masks(count: int, size: tuple[int, int]) -> list[bytes]:
    """PNG phantom masks through the cardiac cycle, different sizes of heart."""
    out = []
    for k in range(count):
        shape = PhantomShape(lv_length=70 + k % 30, phase=(k % 16) / 15)
        ok, data = cv2.imencode(".png", phantom_mask(shape, size))
        assert ok
        out.append(bytes(data.tobytes()))
    return out


def run_case(
    model: Path, name: str, options: list[str], bodies: list[bytes], clients: int, requests: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(model, Path(tmp) / "serve.log", *options)
        try:
            run_load(server.url, lambda c, i: bodies[i % len(bodies)], clients=4, requests=10)
            before = server.get("/metrics")[2].decode()
            result = run_load(
                server.url,
                lambda c, i: bodies[(c * requests + i) % len(bodies)],
                clients=clients,
                requests=requests,
            )
            after = server.get("/metrics")[2].decode()
        finally:
            stop_server(server)
    frames = scrape(after, "echogen_batch_size_sum") - scrape(before, "echogen_batch_size_sum")
    calls = scrape(after, "echogen_batch_size_count") - scrape(before, "echogen_batch_size_count")
    return {
        "case": name,
        "options": " ".join(options),
        "clients": clients,
        "requests_per_client": requests,
        "errors": result.errors,
        "seconds": round(result.seconds, 3),
        "throughput_fps": round(result.throughput, 2),
        "p50_ms": round(result.percentile_ms(50), 2),
        "p95_ms": round(result.percentile_ms(95), 2),
        "mean_batch": round(frames / calls, 2) if calls else None,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_case: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_case.setdefault(row["case"], []).append(row)
    summary = {
        case: {
            key: round(statistics.median(r[key] for r in runs), 2)
            for key in ("throughput_fps", "p50_ms", "p95_ms", "mean_batch")
        }
        for case, runs in by_case.items()
    }
    base = summary["batch-1"]["throughput_fps"]
    ratio = {case: round(s["throughput_fps"] / base, 2) for case, s in summary.items()}
    return {"median": summary, "throughput_ratio_vs_batch1": ratio}


def _env() -> dict[str, Any]:
    try:
        from echogen_trt.bench.env import collect_env

        return collect_env()
    except ImportError:
        return {"python": platform.python_version(), "machine": platform.machine()}


def _machine(env: dict[str, Any]) -> str:
    try:
        from echogen_trt.bench.env import describe_env

        return "; ".join(describe_env(env)[:2])
    except (ImportError, KeyError, TypeError):
        return platform.platform()


def write_results(doc: dict[str, Any], out_dir: Path) -> Path:
    stem = out_dir / f"serve-load-{doc['date']}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# `echogen-trt serve` under load, {doc['date']}",
        "",
        f"Model: `{doc['model']}` ({doc['model_note']}). {doc['clients']} concurrent clients x "
        f"{doc['requests']} requests each, PNG masks in, PNG frames out, 127.0.0.1. Machine: "
        f"{doc['machine']}. Command: `{doc['command']}`.",
        "",
        "| case | server options | run | throughput (frames/s) | p50 ms | p95 ms | mean batch "
        "| errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    runs: dict[str, int] = {}
    for row in doc["rows"]:
        runs[row["case"]] = runs.get(row["case"], 0) + 1
        lines.append(
            f"| {row['case']} | `{row['options']}` | {runs[row['case']]} | "
            f"{row['throughput_fps']:.1f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
            f"{row['mean_batch']} | {row['errors']} |"
        )
    lines += ["", "Medians over the runs; throughput ratio against batch-1 serving:", ""]
    for case, ratio in doc["summary"]["throughput_ratio_vs_batch1"].items():
        med = doc["summary"]["median"][case]
        lines.append(
            f"- **{case}**: {med['throughput_fps']:.1f} frames/s (x{ratio}), p50 "
            f"{med['p50_ms']:.1f} ms, p95 {med['p95_ms']:.1f} ms, mean batch {med['mean_batch']}"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="Default: a random width-16 128x128 model.")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_model(Path(tmp), width=16, size=128)
        note = "given" if args.model else "random weights, width 16, 128x128, FP32 ONNX"
        from echogen_trt.artifacts.onnx_file import read_meta

        size = read_meta(model).input_size
        bodies = masks(64, size)
        dynamic = ["--max-batch", str(args.max_batch), "--max-delay-ms", f"{args.max_delay_ms:g}"]
        cases = [("batch-1", ["--max-batch", "1"]), ("dynamic", dynamic)]
        rows = []
        for _ in range(args.rounds):
            for name, options in cases:
                row = run_case(model, name, options, bodies, args.clients, args.requests)
                print(json.dumps(row), flush=True)
                rows.append(row)
    env = _env()
    doc = {
        "date": dt.date.today().isoformat(),
        "model": str(args.model or "random"),
        "model_note": note,
        "clients": args.clients,
        "requests": args.requests,
        "machine": _machine(env),
        "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
        "rows": rows,
        "summary": summarise(rows),
        "env": env,
        "numpy": np.__version__,
    }
    stem = write_results(doc, args.out)
    print(f"wrote {stem}.json and .md")
    print(json.dumps(doc["summary"], indent=2))


if __name__ == "__main__":
    main()
