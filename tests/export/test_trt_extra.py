"""The `trt` extra picks packages per machine with PEP 508 markers (pip cannot see the driver).

Jetson is told from an ARM server (SBSA: GH200, DGX Spark) by the kernel: L4T's ends in "-tegra".
Windows reports its machine as "AMD64" (issue 23). The base install is lean (issue 23).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

MACHINES = {
    "x86_64 desktop": ("x86_64", "6.8.0-49-generic"),
    "Windows desktop": ("AMD64", "10"),
    "Jetson Orin, JetPack 6": ("aarch64", "5.15.148-tegra"),
    "GH200 (SBSA)": ("aarch64", "6.8.0-1013-nvidia-64k"),
    "DGX Spark (SBSA)": ("aarch64", "6.11.0-1016-nvidia"),
}


def extra(name: str) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def picked(name: str, machine: str) -> dict[str, Requirement]:
    arch, release = MACHINES[machine]
    env = {"platform_machine": arch, "platform_release": release, "extra": name}
    picked = [r for r in extra(name) if r.marker is None or r.marker.evaluate(env)]
    return {r.name: r for r in picked if r.name not in COMMON}


# build-engine reads the ONNX and, on TensorRT 11, converts an FP32 export to FP16: every machine
COMMON = {"echogen-trt", "onnxconverter-common"}


@pytest.mark.parametrize(
    "machine", ["x86_64 desktop", "Windows desktop", "GH200 (SBSA)", "DGX Spark (SBSA)"]
)
def test_wheel_machines_get_cuda_12_builds(machine):
    """CUDA 12 builds run on any driver >= 525; cuda-python 13 needs 580+ and is kept out."""
    got = picked("trt", machine)
    assert set(got) == {"tensorrt-cu12", "cuda-python"}
    assert Version("12.9.0") in got["cuda-python"].specifier
    assert Version("13.0.0") not in got["cuda-python"].specifier


def test_jetson_gets_only_pycuda():
    """TensorRT comes from JetPack's apt packages there; no x86/SBSA wheels."""
    assert set(picked("trt", "Jetson Orin, JetPack 6")) == {"pycuda"}


def test_cuda_13_extra_for_580_drivers():
    got = picked("trt-cu13", "x86_64 desktop")
    assert set(got) == {"tensorrt-cu13", "cuda-python"}
    assert Version("13.0.0") in got["cuda-python"].specifier


@pytest.mark.parametrize("name", ["trt", "trt-cu13"])
def test_every_machine_gets_the_onnx_tools(name):
    for machine in MACHINES:
        arch, release = MACHINES[machine]
        env = {"platform_machine": arch, "platform_release": release, "extra": name}
        got = {r.name for r in extra(name) if r.marker is None or r.marker.evaluate(env)}
        assert got >= COMMON and "echogen-trt[onnx]" in map(str, extra(name)), machine


@pytest.mark.parametrize("name", ["trt", "trt-cu13"])
def test_tensorrt_is_capped_below_the_next_major(name):
    """Tested on 8.5-11.x; a major removes API (11 dropped BuilderFlag.FP16)."""
    (spec,) = [r.specifier for r in extra(name) if r.name.startswith("tensorrt")]
    assert Version("11.4.0.106") in spec and Version("10.13.3.9") in spec
    assert Version("12.0.0") not in spec


def test_the_base_install_is_what_generate_needs():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    base = {Requirement(r).name.lower() for r in project["dependencies"]}
    assert base == {"numpy", "opencv-python-headless", "onnxruntime", "click", "tqdm"}
    assert {r.name.lower() for r in extra("medical")} == {"simpleitk", "nibabel"}
    assert "echogen-trt[medical,onnx]" in map(str, extra("train"))
