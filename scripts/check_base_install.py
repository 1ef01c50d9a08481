"""CI check of the base install (`pip install .`, no extras): what an edge box or a container gets.

Builds a fresh venv with the base install only, then, with a tiny torch-free ONNX model and PNG
masks made here (in the full .venv), checks that in the base venv:
- the heavy packages are really absent (torch, onnx, SimpleITK, nibabel, scipy, TensorRT),
- `echogen-trt generate` turns the PNG masks into frames with ONNX Runtime,
- `echogen-trt serve` and `export` are refused in one line naming their extras (serve, train),
- a .mhd / .nii.gz mask fails in one line naming the medical extra, and the rest is written.
Prints the venv's size (du; without .pyc files, so below benchmarks/install_size.py's figure)
and how long the check took. Run by .ci/run after scripts/test:
`.venv/bin/python scripts/check_base_install.py [--keep DIR]`. Non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("torch", "onnx", "SimpleITK", "nibabel", "scipy", "tensorrt", "starlette")


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def fail(message: str, proc: subprocess.CompletedProcess[str] | None = None) -> None:
    detail = f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}" if proc else ""
    sys.exit(f"base install check FAILED: {message}{detail}")


def make_inputs(folder: Path) -> tuple[Path, Path]:
    """The toy ONNX model of the runtime tests and 3 PNG masks, plus a .mhd and a .nii.gz."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "runtime")]  # fakes/, helpers
    from runtime_helpers import SIZE, labels_mask, toy_model, write_png

    model = toy_model(folder / "toy.onnx")
    masks = folder / "masks"
    for i in range(3):
        write_png(masks / f"m{i}.png", labels_mask((SIZE, SIZE), seed=i))
    # contents never read: the missing reader is reported first
    (masks / "p_4CH_ED_gt.mhd").write_text("ObjectType = Image\nNDims = 3\n")
    (masks / "p_4CH_ES_gt.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 not read")
    return model, masks


def check(venv: Path, model: Path, masks: Path, out: Path) -> None:
    python, cli = venv / "bin" / "python", str(venv / "bin" / "echogen-trt")
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    present = run([str(python), "-c", probe, *ABSENT])
    if present.returncode != 0 or present.stdout.strip() != "[]":
        fail(f"the base install has packages it should not: {present.stdout.strip()}", present)
    gen = run([cli, "generate", str(masks), "--out", str(out), "--model", str(model), "--json"])
    summary = json.loads(gen.stdout) if gen.stdout.strip().startswith("{") else {}
    if gen.returncode != 1 or summary.get("written") != 3:
        fail("generate should write the 3 PNG masks and fail the 2 medical ones (exit 1)", gen)
    reasons = {Path(f["input"]).name: f["reason"] for f in summary["failed"]}
    for name in ("p_4CH_ED_gt.mhd", "p_4CH_ES_gt.nii.gz"):
        reason = reasons.get(name, "")
        if "pip install 'echogen-trt[medical]'" not in reason or "\n" in reason:
            fail(f"{name}: expected one line naming the medical extra, got {reason!r}", gen)
    if sorted(p.name for p in out.glob("*.png")) != ["m0.png", "m1.png", "m2.png"]:
        fail(f"frames written: {sorted(p.name for p in out.iterdir())}", gen)
    ckpt = out.parent / "best.pt"
    ckpt.write_bytes(b"never read")
    for command, extra in (
        (["serve", "--model", str(model)], "serve"),
        (["export", str(ckpt), "--out", str(out.parent / "x.onnx")], "train"),
    ):
        refused = run([cli, *command], timeout=60)
        if refused.returncode == 0 or f"pip install 'echogen-trt[{extra}]'" not in refused.stderr:
            fail(f"{command[0]} should be refused naming the {extra} extra", refused)
        if len([line for line in refused.stderr.splitlines() if line.strip()]) != 1:
            fail(f"{command[0]}'s refusal should be one line", refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, default=None, help="venv folder to keep (reused as is when present)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="base-install-"))
    venv = args.keep or work / "venv"
    try:
        if not (venv / "bin" / "echogen-trt").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            # --no-compile: byte-compiling the packages is most of the install time here
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
                   "--disable-pip-version-check", str(ROOT)]  # fmt: skip
            installed = run(pip)
            if installed.returncode != 0:
                fail("pip install . (base) failed", installed)
        installed_at = time.perf_counter()
        model, masks = make_inputs(work)
        check(venv, model, masks, work / "out")
        size = int(run(["du", "-sb", str(venv)]).stdout.split()[0])
        print(
            f"base install check passed: venv {size / 1e6:.0f} MB (no .pyc), install "
            f"{installed_at - start:.0f} s, checks {time.perf_counter() - installed_at:.0f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
