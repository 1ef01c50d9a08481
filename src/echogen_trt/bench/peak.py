"""The physical peak of the CPU cores this process may use: FMA units x vector width x clock.

The GEMM ceiling (bench.ceiling) is what a library reaches; convolution kernels can beat it
(OpenVINO's FP32 convolutions ran at 99-103% of the best 2048^3 sgemm on an EPYC), so it cannot
say how far a model is from the machine's limit. This module measures that limit:

- the theoretical figure per core and cycle comes from the CPU's flags (`peak_table`, unit-tested
  on known flag sets): FP32 = FMA units x lanes x 2, INT8 VNNI = FMA units x lanes x 4 x 2 (the
  dot product runs on the FMA ports), AMX = one tile multiplier per core (1024 INT8 or 512 BF16
  multiply-adds per cycle); avx512_bf16's `vdpbf16ps` rate differs between CPUs and is measured
  only;
- a C microbenchmark (peak_kernels.c, compiled once with the system's C compiler into the cache
  folder and called through ctypes, which releases the GIL) runs each kernel on one thread per
  physical core, alternating with a clock loop of dependent integer adds at the same vector
  width; rates are per CPU-second of each thread (`time.thread_time`), so other processes on a
  shared machine slow the wall clock, not the figure.

The FP32 kernel reaches 98-101% of the theoretical figure on a Xeon with AMX (2 vCPUs, load 6 to
19; benchmarks/results/cpu-frontier-*.md), VNNI 96-99%, AMX 85-89%. Only x86-64 is covered;
elsewhere, or without a C compiler, `measure_peaks` raises BackendUnavailable and bench keeps its
GEMM ceiling alone.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from echogen_trt.errors import BackendUnavailable
from echogen_trt.fileio import default_cache_dir
from echogen_trt.runtime.cpu import cpu_flags, cpu_vendor, physical_cores

log = logging.getLogger(__name__)

SOURCE = "peak_kernels.c"
CC_FLAGS = ("-O2", "-shared", "-fPIC")
CHUNK_ITERS = {  # iterations per timed call: a few million cycles, ~1-3 ms
    "fma256": 1_000_000,
    "fma512": 1_000_000,
    "vnni512": 1_000_000,
    "bf16_512": 250_000,
    "amx_int8": 50_000,
    "amx_bf16": 50_000,
    "clock256": 100_000,
    "clock512": 100_000,
}
CLOCK_ADDS = 64  # dependent adds per clock-loop iteration (peak_kernels.c)


@dataclass(frozen=True)
class PeakKind:
    """One kernel: its precision, the work per iteration and what the flags say per cycle."""

    precision: str  # fp32 | int8 | bf16
    kernel: str  # function in peak_kernels.c
    clock: str  # the clock loop at the same vector width
    instruction: str
    ops_per_iter: int  # multiply-adds count 2
    per_cycle_core: float | None  # theoretical ops per cycle and core; None: not from flags
    basis: str


def fma_units(flags: set[str], vendor: str) -> tuple[int, int, str]:
    """(FMA units, FP32 lanes per unit, why) of one core, from its flags; (0, 0, why) without
    FMA. Intel parts with one 512-bit unit (client Ice/Tiger/Rocket Lake, some Xeon Silver and
    Bronze) have the same flags as those with two: their measured fraction reads about 50%."""
    amd = vendor == "AuthenticAMD"
    if "avx512f" in flags:
        if amd and "avx_vnni" not in flags:  # Zen 4: 512-bit ops on two 256-bit pipes
            return 2, 8, "AMD Zen 4: AVX-512 split over two 256-bit FMA pipes"
        return 2, 16, "two 512-bit FMA units (Xeon Scalable, Zen 5)"
    if "avx2" in flags and "fma" in flags:
        return 2, 8, "two 256-bit FMA units (Haswell and later, Zen 2 and later)"
    return 0, 0, "no AVX2 FMA"


def peak_table(flags: set[str], vendor: str) -> list[PeakKind]:
    """The kernels this CPU can run, with their theoretical ops per cycle and core."""
    units, lanes, why = fma_units(flags, vendor)
    if not units:
        return []
    wide = "avx512f" in flags
    clock = "clock512" if wide else "clock256"
    vec = 16 if wide else 8  # lanes of the kernel's registers
    regs = 16 if wide else 12  # accumulators in the kernel
    kinds = [
        PeakKind(
            "fp32", "fma512" if wide else "fma256", clock,
            f"vfmadd ({'zmm' if wide else 'ymm'})", regs * vec * 2, units * lanes * 2, why,
        )
    ]  # fmt: skip
    if wide and "avx512_vnni" in flags:
        kinds.append(
            PeakKind(
                "int8", "vnni512", clock, "vpdpbusd (zmm)", regs * vec * 4 * 2,
                units * lanes * 4 * 2, f"VNNI on the FMA ports: {why}",
            )
        )  # fmt: skip
    if wide and "avx512_bf16" in flags:
        kinds.append(
            PeakKind(
                "bf16", "bf16_512", clock, "vdpbf16ps (zmm)", regs * vec * 2 * 2, None,
                "vdpbf16ps runs at different rates on different CPUs: measured only",
            )
        )  # fmt: skip
    if {"amx_tile", "amx_int8"} <= flags:
        kinds.append(
            PeakKind(
                "int8", "amx_int8", clock, "tdpbssd (AMX)", 4 * 16 * 16 * 64 * 2, 2048.0,
                "AMX: one tile multiplier per core, 1024 INT8 multiply-adds per cycle",
            )
        )  # fmt: skip
    if {"amx_tile", "amx_bf16"} <= flags:
        kinds.append(
            PeakKind(
                "bf16", "amx_bf16", clock, "tdpbf16ps (AMX)", 4 * 16 * 16 * 32 * 2, 1024.0,
                "AMX: one tile multiplier per core, 512 BF16 multiply-adds per cycle",
            )
        )  # fmt: skip
    return kinds


@dataclass(frozen=True)
class Peak:
    """A kernel's measured rate on `threads` cores next to the theoretical figure at the
    measured clock (G ops/s; an FMA or multiply-add counts 2)."""

    precision: str
    kernel: str
    instruction: str
    threads: int
    gops: float  # sum over threads of each one's median rate
    gops_best: float
    clock_ghz: float  # median of the clock loops run between the kernel's calls
    per_cycle_core: float | None
    theoretical_gops: float | None
    fraction: float | None
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _compiler() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise BackendUnavailable(
        "physical peak | no C compiler found (CC, cc, gcc or clang). Hint: install one "
        "(`apt-get install gcc`) to measure the peak; the GEMM ceiling is reported without it."
    )


def library_path(cache_dir: Path | None = None) -> Path:
    """The compiled kernels, built on first use; the file name hashes the source and compiler."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise BackendUnavailable(
            f"physical peak | the kernels are x86-64 only, this is {platform.machine()}."
        )
    source = resources.files("echogen_trt.bench").joinpath(SOURCE).read_bytes()
    cc = _compiler()
    key = hashlib.sha256(source + cc.encode() + " ".join(CC_FLAGS).encode()).hexdigest()[:16]
    out = (cache_dir or default_cache_dir()) / "peak" / f"peak-{key}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src, lib = Path(tmp) / SOURCE, Path(tmp) / out.name
        src.write_bytes(source)
        done = subprocess.run(
            [cc, *CC_FLAGS, "-o", str(lib), str(src)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BackendUnavailable(
                f"physical peak | {cc} could not compile {SOURCE}: "
                f"{(done.stderr.strip().splitlines() or ['?'])[0][:200]}. "
                "Hint: gcc >= 11 or clang >= 12 (AVX-512 BF16 and AMX intrinsics)."
            )
        os.replace(lib, out)
    return out


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for name in CHUNK_ITERS:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_long]
    lib.amx_enable.restype = ctypes.c_int
    return lib


def _thread_rates(
    lib: ctypes.CDLL, kind: PeakKind, seconds: float, threads: int
) -> tuple[list[list[float]], list[float]]:
    """(each thread's kernel rates in ops per CPU-second, every clock-loop rate in Hz)."""
    kernel, clock = getattr(lib, kind.kernel), getattr(lib, kind.clock)
    n_kernel, n_clock = CHUNK_ITERS[kind.kernel], CHUNK_ITERS[kind.clock]
    rates: list[list[float]] = [[] for _ in range(threads)]
    clocks: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)
    stop_at = time.perf_counter() + seconds + 0.05 * threads

    def work(i: int) -> None:
        start.wait()
        while time.perf_counter() < stop_at or len(rates[i]) < 3:
            t0 = time.thread_time()
            clock(n_clock)
            t1 = time.thread_time()
            kernel(n_kernel)
            t2 = time.thread_time()
            if t1 > t0 and t2 > t1:  # a call shorter than the clock's tick says nothing
                clocks[i].append(n_clock * CLOCK_ADDS / (t1 - t0))
                rates[i].append(n_kernel * kind.ops_per_iter / (t2 - t1))

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return rates, [c for per in clocks for c in per]


def measure_peaks(
    seconds: float = 0.5,
    threads: int | None = None,
    *,
    flags: set[str] | None = None,
    cache_dir: Path | None = None,
) -> list[Peak]:
    """Every kernel of `peak_table` for this CPU, `seconds` each on `threads` threads (default
    one per physical core). BackendUnavailable where nothing can be measured."""
    flags = cpu_flags() if flags is None else flags
    kinds = peak_table(flags, cpu_vendor())
    if not kinds:
        raise BackendUnavailable("physical peak | this CPU has no AVX2 FMA; nothing to measure.")
    lib = _load(library_path(cache_dir))
    n = threads or physical_cores()
    amx_ok = lib.amx_enable() == 0 if any(k.kernel.startswith("amx") for k in kinds) else False
    out = []
    for kind in kinds:
        if kind.kernel.startswith("amx") and not amx_ok:
            log.warning("physical peak | the kernel refused AMX tile data; %s skipped", kind.kernel)
            continue
        rates, clocks = _thread_rates(lib, kind, seconds, n)
        gops = sum(statistics.median(r) for r in rates) / 1e9
        ghz = statistics.median(clocks) / 1e9
        theory = n * ghz * kind.per_cycle_core if kind.per_cycle_core else None
        out.append(
            Peak(
                kind.precision, kind.kernel, kind.instruction, n, gops,
                sum(max(r) for r in rates) / 1e9, ghz, kind.per_cycle_core, theory,
                gops / theory if theory else None, kind.basis,
            )
        )  # fmt: skip
    return out


def best_by_precision(peaks: list[Peak]) -> dict[str, Peak]:
    """The fastest measured kernel of each precision (INT8: AMX or VNNI, whichever is faster)."""
    best: dict[str, Peak] = {}
    for p in peaks:
        if p.precision not in best or p.gops > best[p.precision].gops:
            best[p.precision] = p
    return best
