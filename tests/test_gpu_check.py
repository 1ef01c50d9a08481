"""scripts/gpu_check on a machine without a GPU: it says why, runs nothing and exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_skips_cleanly_without_a_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: run scripts/gpu_check for real")
    done = subprocess.run(
        [shutil.which("bash") or "bash", str(ROOT / "scripts" / "gpu_check"), "--out-dir",
         str(tmp_path / "results")],
        capture_output=True, text=True, check=False, env=os.environ | {"PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gpu_check: skipped, nothing run: no CUDA GPU visible to PyTorch" in done.stdout
    assert not (tmp_path / "results").exists()  # no figures invented


def test_result_file_names_carry_the_device():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from gpu_check import slug
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert slug("NVIDIA H200") == "nvidia-h200"
    assert slug("Orin (nvgpu)") == "orin-nvgpu"
