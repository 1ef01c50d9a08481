"""Phantom dataset speed: patients per minute, in memory and written as a CAMUS tree.

Cases:
- generate/4CH-ED-ES: `synth_patient` for the 4CH view, ED+ES with masks, no sequence, in memory
  (one process).
- write/4CH-ED-ES: `synthesize_dataset` of the same, written as a tree (workers 1 and 2).
- write/default: the `echogen-trt synth` default (4CH+2CH, ED/ES, sequences with masks).

Run: `PYTHONPATH=src python benchmarks/bench_synth.py [--patients 40] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from echogen_trt.data.phantom import synth_patient
from echogen_trt.data.synth import synthesize_dataset


def _env() -> dict[str, Any]:
    try:
        from echogen_trt.bench.env import collect_env

        return collect_env()
    except ImportError:
        return {"python": platform.python_version(), "machine": platform.machine()}


def bench_generate(patients: int, seed: int) -> dict[str, Any]:
    synth_patient(seed, 0, ("4CH",), with_sequence=False)  # warm-up (imports, caches)
    start = time.perf_counter()
    for i in range(1, patients + 1):
        synth_patient(seed, i, ("4CH",), with_sequence=False)
    seconds = time.perf_counter() - start
    return _row("generate/4CH-ED-ES", patients, 1, seconds, "in memory")


def bench_write(
    name: str, patients: int, workers: int, seed: int, layout: str, **kwargs: Any
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        summary = synthesize_dataset(
            Path(tmp) / "tree", patients, layout, seed, workers=workers, progress=False, **kwargs
        )
        mb = summary.bytes / 1e6
    return _row(
        name, patients, workers, summary.seconds, f"{layout}, {mb / patients:.1f} MB/patient"
    )


def _row(name: str, patients: int, workers: int, seconds: float, note: str) -> dict[str, Any]:
    return {
        "case": name,
        "patients": patients,
        "workers": workers,
        "seconds": round(seconds, 3),
        "patients_per_minute": round(60.0 * patients / seconds, 1),
        "note": note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=40, help="patients for the 4CH ED/ES cases")
    parser.add_argument("--full-patients", type=int, default=12, help="patients for the default")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--layout", default="nifti", choices=["nifti", "mhd"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    rows = [bench_generate(args.patients, args.seed)]
    fast = {"views": ("4CH",), "with_sequence": False}
    for w in worker_counts:
        rows.append(
            bench_write("write/4CH-ED-ES", args.patients, w, args.seed, args.layout, **fast)
        )
    for w in worker_counts:
        rows.append(bench_write("write/default", args.full_patients, w, args.seed, args.layout))
    for r in rows:
        print(
            f"{r['case']:<20} workers={r['workers']}  {r['patients']:>3} patients  "
            f"{r['seconds']:>7.2f} s  {r['patients_per_minute']:>7.1f} patients/min  ({r['note']})"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"results": rows, "env": _env()}, indent=2, default=str) + "\n"
        )


if __name__ == "__main__":
    main()
