"""pyproject's dependencies and extras, evaluated as pip would on each platform (issue 23): a lean
base, the TensorRT extra's markers on Linux, Windows, ARM servers and Jetson, the version cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")
PROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]

# What pip's marker environment reports on each machine (the keys the extras test).
LINUX = {"platform_machine": "x86_64", "platform_release": "6.8.0-49-generic",
         "sys_platform": "linux", "platform_system": "Linux"}  # fmt: skip
WINDOWS = {"platform_machine": "AMD64", "platform_release": "10", "sys_platform": "win32",
           "platform_system": "Windows"}  # fmt: skip
SBSA = {"platform_machine": "aarch64", "platform_release": "6.8.0-1017-nvidia-64k",
        "sys_platform": "linux", "platform_system": "Linux"}  # fmt: skip
JETSON = {"platform_machine": "aarch64", "platform_release": "5.15.148-tegra",
          "sys_platform": "linux", "platform_system": "Linux"}  # fmt: skip


def names(requirements: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Distribution names pip would install for `requirements` on `env` (no recursion)."""
    out = set()
    for text in requirements:
        req = Requirement(text)
        if req.marker is None or env is None or req.marker.evaluate({"extra": "", **env}):
            out.add(req.name.lower())
    return out


def test_the_base_is_what_generate_needs() -> None:
    assert names(PROJECT["dependencies"]) == {
        "numpy", "opencv-python-headless", "onnxruntime", "click", "tqdm"}  # fmt: skip


def test_train_pulls_the_medical_and_onnx_extras() -> None:
    extras = PROJECT["optional-dependencies"]
    assert names(extras["medical"]) == {"simpleitk", "nibabel"}
    assert "echogen-trt[medical,onnx]" in extras["train"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (LINUX, {"tensorrt-cu12", "cuda-python"}),
        (WINDOWS, {"tensorrt-cu12", "cuda-python"}),  # Windows says AMD64, not x86_64
        (SBSA, {"tensorrt-cu12", "cuda-python"}),
        (JETSON, {"pycuda"}),  # TensorRT comes from JetPack there
    ],
)
def test_trt_extra_per_platform(env: dict[str, str], expected: set[str]) -> None:
    common = {"echogen-trt", "onnxconverter-common"}
    assert names(PROJECT["optional-dependencies"]["trt"], env) == expected | common


@pytest.mark.parametrize("extra", ["trt", "trt-cu13"])
def test_tensorrt_is_capped_below_the_next_major(extra: str) -> None:
    (spec,) = [Requirement(r).specifier for r in PROJECT["optional-dependencies"][extra]
               if Requirement(r).name.startswith("tensorrt")]  # fmt: skip
    assert spec.contains(Version("11.4.0.106")) and spec.contains(Version("10.13.3.9"))
    assert not spec.contains(Version("12.0.0"))
