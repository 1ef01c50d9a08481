"""`echogen-trt doctor`: what is installed, what each missing piece disables, how to get it.

Checks import nothing heavy unless the piece is present (torch is imported only to ask about
CUDA when it is installed). Every check returns a `Check`; `run_checks` returns them in order.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

from echogen_trt import __version__
from echogen_trt.runtime.availability import (
    TRT_INSTALL_HINT,
    has_module,
    module_version,
    tensorrt_module,
)


@dataclass(frozen=True)
class Check:
    """One line of the report: a component, whether it is usable, and what its absence costs."""

    name: str
    ok: bool
    detail: str
    disables: str = ""  # what does not work without it
    fix: str = ""  # how to get it

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _python() -> Check:
    version = platform.python_version()
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, f"{version} ({sys.executable})", "everything", "Python >= 3.10")


def _torch() -> Check:
    version = module_version("torch")
    if version is None:
        return Check(
            "torch",
            False,
            "not installed",
            "train, export, the PyTorch backend and the torch baseline in bench",
            "pip install 'echogen-trt[train]'",
        )
    import torch

    cuda = torch.cuda.is_available()
    detail = f"{version}, CUDA {'available: ' + torch.cuda.get_device_name(0) if cuda else 'no'}"
    return Check("torch", True, detail)


def _onnxruntime() -> Check:
    version = module_version("onnxruntime")
    if version is None:
        return Check(
            "onnxruntime",
            False,
            "not installed",
            "the ONNX Runtime backend and export verification",
            "pip install onnxruntime (or onnxruntime-gpu)",
        )
    import onnxruntime as ort

    providers = ", ".join(ort.get_available_providers())
    return Check("onnxruntime", True, f"{version}, providers: {providers}")


def _openvino() -> Check:
    version = module_version("openvino")
    if version is None:
        return Check(
            "openvino",
            False,
            "not installed",
            "the OpenVINO backend (.xml IR, INT8 models; often the fastest on a CPU)",
            "pip install 'echogen-trt[openvino]'",
        )
    import openvino as ov

    devices = ", ".join(ov.Core().available_devices)
    nncf = module_version("nncf")
    detail = f"{version}, devices: {devices}; nncf {nncf or 'not installed'}"
    if nncf is None:
        detail += " (export --precision int8 needs it: pip install 'echogen-trt[int8]')"
    return Check("openvino", True, detail)


def _tensorrt() -> Check:
    trt = tensorrt_module()
    if trt is None:
        stubs = has_module("tensorrt")
        detail = "only type stubs installed" if stubs else "not installed"
        return Check(
            "tensorrt", False, detail, "build-engine and the TensorRT backend", TRT_INSTALL_HINT
        )
    return Check("tensorrt", True, str(trt.__version__))


def _cuda_bindings() -> Check:
    found = []
    for mod, label in (("cuda.bindings", "cuda-python"), ("pycuda", "pycuda")):
        if has_module(mod):
            found.append(label)
    if not found:
        return Check(
            "cuda (python)",
            False,
            "neither cuda-python nor pycuda",
            "the TensorRT backend's buffers and streams",
            "pip install 'cuda-python>=12,<13' (13.x needs driver 580+) or pycuda; on Jetson: "
            "pip install pycuda with nvcc on PATH",
        )
    return Check("cuda (python)", True, ", ".join(found))


def _gpu() -> Check:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as err:
            return Check("gpu", False, f"nvidia-smi failed: {err}", "CUDA paths", "check driver")
        if out:
            return Check("gpu", True, out.replace("\n", "; "))
    if os.path.exists("/etc/nv_tegra_release"):
        with open("/etc/nv_tegra_release", encoding="utf-8", errors="replace") as fh:
            return Check("gpu", True, "Jetson: " + fh.readline().strip())
    return Check(
        "gpu",
        False,
        "no NVIDIA GPU found",
        "TensorRT, CUDA execution providers, GPU training",
        "run on a machine with an NVIDIA GPU and driver (CPU paths still work)",
    )


def _medical_io() -> Check:
    missing = [m for m in ("SimpleITK", "nibabel") if not has_module(m)]
    if missing:
        return Check(
            "medical I/O",
            False,
            "missing " + ", ".join(missing),
            "reading CAMUS .mhd/.nii.gz files",
            "pip install 'echogen-trt[medical]'",
        )
    return Check("medical I/O", True, "SimpleITK, nibabel")


def run_checks() -> list[Check]:
    """All checks, in the order the report shows them."""
    head = Check("echogen-trt", True, f"{__version__} on {platform.platform()}")
    return [
        head,
        _python(),
        _torch(),
        _onnxruntime(),
        _openvino(),
        _tensorrt(),
        _cuda_bindings(),
        _gpu(),
        _medical_io(),
    ]
