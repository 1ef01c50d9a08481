"""How much disk `pip install echogen-trt` takes: a fresh venv per install target, measured with du.

An edge box or a container image pays for every byte of the base install, so the base holds only
what `generate` needs (issue 23 target: <= 250 MB on x86_64). For each target (a path to a
checkout, optionally with extras: `.`, `.[serve]`, `/work/main`; or "req req ..." for a what-if
set of requirements in one venv) this makes a fresh venv, installs
the target into it with pip (PyPI or the local pip cache), and reports `du -sb` of the venv minus
an empty venv (pip itself), plus the largest distributions (from their RECORD files). Targets are
installed in turn (sizes do not depend on load; the load is recorded anyway).

With `--resolve EXTRA ...` it also records what `pip install --dry-run --report` resolves for
`.[EXTRA]` today (name==version per package), or the error where the dry run fails: the TensorRT
extras fail where https://pypi.nvidia.com is out of reach, because PyPI's tensorrt-cu12-libs /
-cu13-libs are placeholders whose metadata step downloads the real wheel from NVIDIA's index.

Run: `python benchmarks/install_size.py [TARGET ...] [--resolve base trt ...]
[--out benchmarks/results/install-size-<date>.json]`. Default target: this checkout (`.`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOP = 12  # largest distributions listed per target


def du_bytes(path: Path) -> int:
    """Apparent size of a tree, as `du -sb` reports it (the figure an image layer pays)."""
    out = subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


def make_venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([str(python), "-c", code], check=True, capture_output=True,
                               text=True).stdout.strip())  # fmt: skip


def distribution_sizes(site: Path) -> dict[str, int]:
    """Bytes per installed distribution, summed over the files its RECORD lists."""
    sizes: dict[str, int] = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0]
        total = 0
        with record.open(newline="") as handle:
            for row in csv.reader(handle):
                target = (site / row[0]).resolve() if row else None
                if target is not None and target.is_file():
                    total += target.stat().st_size
        sizes[name] = total
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def resolve(extra: str) -> dict[str, Any]:
    """What pip resolves for `.[extra]` ("base": `.`) today, without installing anything."""
    target = "." if extra == "base" else f".[{extra}]"
    with tempfile.TemporaryDirectory(prefix="install-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--disable-pip-version-check", "--report", str(report), target]  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            lines = [x.strip() for x in out.splitlines() if "is ignored" not in x]
            # the versions pip had chosen when it failed, then NVIDIA's placeholder message
            chosen = [x for x in lines if x.startswith("Collecting tensorrt")]
            why = [x for x in lines if "pypi.nvidia.com" in x or x.startswith("ERROR")]
            return {"extra": extra, "ok": False, "error": chosen + (why or lines[-3:])[:3]}
        items = json.loads(report.read_text())["install"]
    names = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in items)
    return {"extra": extra, "ok": True, "resolved": names}


def measure(target: str, bare_bytes: int, bare_dists: set[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="install-size-") as tmp:
        python = make_venv(Path(tmp) / "venv")
        start = time.perf_counter()
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        pip += target.split()  # "a b c": several requirements in one venv (a what-if base)
        subprocess.run(pip, check=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        total = du_bytes(Path(tmp) / "venv")
        dists = distribution_sizes(site_packages(python))
    return {
        "target": target,
        "venv_mb": round(total / 1e6, 1),
        "added_mb": round((total - bare_bytes) / 1e6, 1),
        "added_mib": round((total - bare_bytes) / 2**20, 1),
        "install_seconds": round(seconds, 1),
        "distributions_mb": {k: round(v / 1e6, 1) for k, v in dists.items() if k not in bare_dists},
    }


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"# Install size, {result['date']} ({result['machine']}, Python {result['python']})",
        "",
        f"Fresh venv per target, `du -sb` minus an empty venv ({result['bare_venv_mb']} MB). "
        f"Load average {result['load_average']}. Command: `{result['command']}`.",
        "",
        "| target | installed MB (MiB) | largest distributions (MB) |",
        "|---|---:|---|",
    ]
    for row in result["rows"]:
        top = ", ".join(f"{k} {v}" for k, v in list(row["distributions_mb"].items())[:6])
        lines.append(f"| `{row['target']}` | {row['added_mb']} ({row['added_mib']}) | {top} |")
    if result["resolved"]:
        lines += ["", "## What `pip install --dry-run` resolves today", ""]
        for r in result["resolved"]:
            what = " ".join(r["resolved"]) if r["ok"] else "FAILS: " + " / ".join(r["error"])
            lines.append(f"- `{r['extra']}`: {what}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="pip install targets [default: . unless "
                        "--resolve is given]")  # fmt: skip
    parser.add_argument("--resolve", nargs="*", default=[], help="extras to dry-run resolve")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (+ .md beside it)")
    args = parser.parse_args()
    if not args.targets and not args.resolve:
        args.targets = ["."]
    with tempfile.TemporaryDirectory(prefix="install-size-bare-") as tmp:
        python = make_venv(Path(tmp) / "venv")
        bare = du_bytes(Path(tmp) / "venv")
        bare_dists = set(distribution_sizes(site_packages(python)))
    rows = []
    for target in args.targets:
        rows.append(measure(target, bare, bare_dists))
        print(f"{target}: {rows[-1]['added_mb']} MB", flush=True)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "bare_venv_mb": round(bare / 1e6, 1),
        "targets": args.targets,
        "rows": rows,
        "resolved": [resolve(extra) for extra in args.resolve],
        "command": " ".join(["python benchmarks/install_size.py", *map(shlex.quote, sys.argv[1:])]),
    }
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(summary(result))
    print(summary(result))


if __name__ == "__main__":
    main()
