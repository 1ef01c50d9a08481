"""`echogen-trt doctor`: what is installed, what each missing piece disables, how to get it.

Checks import nothing heavy unless the piece is present (torch is imported only to ask about
CUDA when it is installed). The backend lines come from the registry's records: a new backend
appears here without an edit. Every check returns a `Check`; `run_checks` returns them in order.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

from echogen_trt import __version__
from echogen_trt.errors import EchogenError
from echogen_trt.runtime.availability import CUDA_INSTALL_HINT, cuda_bindings, has_module
from echogen_trt.runtime.registry import BackendRecord, backend_class, records


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


def _backend(rec: BackendRecord) -> Check:
    """A backend's line, from its record: the probe says whether it is usable and why, the
    backend class may add what it sees of the machine (torch: CUDA; OpenVINO: devices)."""
    ok, why = rec.probe()
    if not ok:
        return Check(rec.package, False, why, rec.disables, rec.install)
    try:
        extra = backend_class(rec.name).environment()
    except EchogenError as err:
        return Check(rec.package, False, f"{why}, but {err}", rec.disables, rec.install)
    return Check(rec.package, True, f"{why}{', ' + extra if extra else ''}")


def _cuda_bindings() -> Check:
    found = cuda_bindings()
    if not found:
        return Check(
            "cuda (python)",
            False,
            "neither cuda-python nor pycuda",
            "the TensorRT backend's buffers and streams",
            CUDA_INSTALL_HINT,
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
            "pip install SimpleITK nibabel",
        )
    return Check("medical I/O", True, "SimpleITK, nibabel")


def run_checks() -> list[Check]:
    """All checks, in the order the report shows them."""
    head = Check("echogen-trt", True, f"{__version__} on {platform.platform()}")
    return [
        head,
        _python(),
        *(_backend(rec) for rec in records()),
        _cuda_bindings(),
        _gpu(),
        _medical_io(),
    ]
