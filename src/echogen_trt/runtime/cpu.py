"""The CPU this process runs on: model and physical cores, read once from /proc/cpuinfo.

CPU backends size their thread pools from the physical cores (hyper-threads add little to
convolution throughput and cost scheduling noise); the benchmark report names the CPU.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """CPU model and physical core count from /proc/cpuinfo text (x86 and ARM spellings)."""
    model = None
    for key in ("model name", "Model", "Hardware", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            model = m.group(1).strip()
            break
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        phys = re.search(r"^physical id\s*:\s*(\S+)", block, re.MULTILINE)
        core = re.search(r"^core id\s*:\s*(\S+)", block, re.MULTILINE)
        if core:
            cores.add((phys.group(1) if phys else "0", core.group(1)))
    return {"model": model, "physical_cores": len(cores) or None}


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def parse_flags(text: str) -> set[str]:
    """The feature flags of the first CPU in /proc/cpuinfo text (x86 "flags", ARM "Features")."""
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    return set(m.group(1).split()) if m else set()


def cpu_flags() -> set[str]:
    """This CPU's feature flags (avx512f, avx512_vnni, amx_int8, ...); empty where unknown."""
    return parse_flags(_cpuinfo())


def cpu_vendor() -> str:
    """ "GenuineIntel", "AuthenticAMD", ... from /proc/cpuinfo; "" where unknown."""
    m = re.search(r"^vendor_id\s*:\s*(\S+)", _cpuinfo(), re.MULTILINE)
    return m.group(1) if m else ""


def usable_cores() -> int:
    """Logical cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical CPU cores usable by this process (Linux /proc/cpuinfo; else logical count)."""
    logical = usable_cores()
    cores = parse_cpuinfo(_cpuinfo())["physical_cores"]
    return max(1, min(cores, logical)) if cores else logical
