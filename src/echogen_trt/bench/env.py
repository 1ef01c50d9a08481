"""The environment block every benchmark result carries: numbers mean nothing without it.

Everything is read defensively: a missing file, tool or package gives None, never an error, so
the same code runs on a laptop, a GPU server and a Jetson. torch is imported only when it is
installed (to ask about CUDA); TensorRT only through `availability.tensorrt_module`, because the
type stubs make a bare `import tensorrt` succeed.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from echogen_trt import __version__
from echogen_trt.runtime.availability import has_module, module_version, tensorrt_module
from echogen_trt.runtime.cpu import parse_cpuinfo, usable_cores

TEGRA_RELEASE = Path("/etc/nv_tegra_release")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _run(cmd: list[str], timeout: float = 10.0) -> str | None:
    """stdout of a tool, or None when it is absent, fails or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def cpu_info() -> dict[str, Any]:
    """Model, logical cores, physical cores, cores this process may use, architecture."""
    info = parse_cpuinfo(_read("/proc/cpuinfo") or "")
    return {
        "model": info["model"] or platform.processor() or None,
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": info["physical_cores"],
        "usable_cores": usable_cores(),
    }


def ram_gib() -> float | None:
    m = re.search(r"^MemTotal:\s*(\d+)\s*kB", _read("/proc/meminfo") or "", re.MULTILINE)
    return round(int(m.group(1)) / 2**20, 1) if m else None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load: other work on the machine skews every number."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def gpus_from_smi() -> list[dict[str, Any]]:
    """One dict per GPU from nvidia-smi (empty when absent)."""
    query = "name,driver_version,compute_cap,memory.total,clocks.sm,clocks.max.sm"
    out = _run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (out or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3:
            continue
        keys = ["name", "driver", "compute_capability", "memory_mib", "sm_clock_mhz", "max_sm_mhz"]
        gpus.append(dict(zip(keys, parts, strict=False)))
    return gpus


def torch_info() -> dict[str, Any] | None:
    """torch version, its CUDA/cuDNN and its devices (None when torch is absent)."""
    if not has_module("torch"):
        return None
    import torch

    info: dict[str, Any] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "cuda_available": bool(torch.cuda.is_available()),
    }
    if info["cuda_available"]:
        info["cudnn"] = torch.backends.cudnn.version()
        info["devices"] = [
            {
                "name": torch.cuda.get_device_name(i),
                "compute_capability": "{}.{}".format(*torch.cuda.get_device_capability(i)),
            }
            for i in range(torch.cuda.device_count())
        ]
    return info


def numpy_info() -> dict[str, Any]:
    import numpy as np

    blas = None
    try:
        config = np.show_config(mode="dicts")
        deps = config.get("Build Dependencies", {}) if isinstance(config, dict) else {}
        blas_cfg = deps.get("blas", {})
        blas = " ".join(str(blas_cfg.get(k, "")) for k in ("name", "version")).strip() or None
    except (TypeError, AttributeError, ValueError):  # numpy < 1.25: no mode="dicts"
        pass
    return {"version": np.__version__, "blas": blas}


def onnxruntime_info() -> dict[str, Any] | None:
    if not has_module("onnxruntime"):
        return None
    try:
        import onnxruntime as ort
    except Exception:  # a broken install raises anything
        return None
    return {"version": ort.__version__, "providers": list(ort.get_available_providers())}


def tensorrt_version() -> str | None:
    trt = tensorrt_module()
    return str(trt.__version__) if trt is not None else None


def parse_nvpmodel(text: str | None) -> str | None:
    """'NV Power Mode: MAXN' -> 'MAXN' (with the mode id when printed on the next line)."""
    m = re.search(r"Power Mode\s*:\s*(\S.*)", text or "")
    if not m:
        return None
    mode = m.group(1).strip()
    rest = (text or "")[m.end() :].strip().splitlines()
    return f"{mode} ({rest[0].strip()})" if rest and rest[0].strip().isdigit() else mode


def parse_jetson_clocks(text: str | None) -> bool | None:
    """True when every listed clock has MinFreq == MaxFreq (what `jetson_clocks` pins), False
    when one does not, None when the output says nothing (tool absent or needs root)."""
    pairs = re.findall(r"MinFreq=(\d+).*?MaxFreq=(\d+)", text or "")
    if not pairs:
        return None
    return all(lo == hi for lo, hi in pairs)


def jetson_info() -> dict[str, Any] | None:
    """L4T release, board model, power mode and clock lock; None off a Jetson."""
    release = _read(TEGRA_RELEASE)
    if release is None:
        return None
    model = _read("/proc/device-tree/model")
    return {
        "l4t_release": release.strip().splitlines()[0] if release.strip() else None,
        "model": model.strip("\x00\n ") if model else None,
        "power_mode": parse_nvpmodel(_run(["nvpmodel", "-q"])),
        "clocks_locked": parse_jetson_clocks(_run(["jetson_clocks", "--show"])),
    }


def collect_env() -> dict[str, Any]:
    """The whole block: host, CPU, RAM, load, GPUs, Jetson state and library versions."""
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "ram_gib": ram_gib(),
        "load_avg": load_average(),
        "gpus": gpus_from_smi(),
        "jetson": jetson_info(),
        "versions": {
            "echogen_trt": __version__,
            "numpy": numpy_info(),
            "onnxruntime": onnxruntime_info(),
            "onnx": module_version("onnx"),
            "torch": torch_info(),
            "tensorrt": tensorrt_version(),
        },
    }


def describe_env(env: dict[str, Any]) -> list[str]:
    """A few human lines for the top of a report."""
    cpu = env["cpu"]
    versions = env["versions"]
    ort = versions.get("onnxruntime") or {}
    torch_v = versions.get("torch") or {}
    lines = [
        f"Host: {env['host']} ({env['platform']}), Python {env['python']}",
        f"CPU: {cpu['model']} ({cpu['arch']}), {cpu['physical_cores']} physical / "
        f"{cpu['logical_cores']} logical cores, RAM {env['ram_gib']} GiB, "
        f"load {env['load_avg']}",
    ]
    for gpu in env["gpus"]:
        lines.append(
            f"GPU: {gpu.get('name')}, driver {gpu.get('driver')}, "
            f"compute capability {gpu.get('compute_capability')}"
        )
    if not env["gpus"]:
        lines.append("GPU: none found (nvidia-smi absent)")
    if env["jetson"]:
        j = env["jetson"]
        lines.append(
            f"Jetson: {j['model']} ({j['l4t_release']}), power mode {j['power_mode']}, "
            f"clocks locked: {j['clocks_locked']}"
        )
    lines.append(
        f"Versions: echogen-trt {versions['echogen_trt']}, numpy {versions['numpy']['version']} "
        f"({versions['numpy']['blas']}), onnxruntime {ort.get('version')} "
        f"{ort.get('providers')}, torch {torch_v.get('version')} (CUDA {torch_v.get('cuda')}), "
        f"TensorRT {versions['tensorrt']}"
    )
    return lines
