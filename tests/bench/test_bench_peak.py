"""The physical peak: theoretical figures from known CPUs' flags, and the C kernels measured."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import pytest

from echogen_trt.bench import peak
from echogen_trt.bench.report import format_report
from echogen_trt.runtime.cpu import parse_flags

# /proc/cpuinfo flag lines (trimmed to what matters) of CPUs the project has run on
SAPPHIRE_RAPIDS = "fma avx2 avx512f avx512bw avx_vnni avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"  # noqa: E501
EPYC_ZEN4 = "fma avx2 avx512f avx512bw avx512_vnni avx512_bf16"
EPYC_ZEN5 = "fma avx2 avx512f avx512bw avx512_vnni avx512_bf16 avx_vnni"
EPYC_ZEN3 = "fma avx2"
NO_FMA = "sse4_2 avx"


def _table(flags: str, vendor: str) -> dict[str, peak.PeakKind]:
    return {k.kernel: k for k in peak.peak_table(parse_flags(f"flags\t: {flags}\n"), vendor)}


def test_sapphire_rapids_peaks_per_cycle_and_core() -> None:
    kinds = _table(SAPPHIRE_RAPIDS, "GenuineIntel")
    assert set(kinds) == {"fma512", "vnni512", "bf16_512", "amx_int8", "amx_bf16"}
    assert kinds["fma512"].per_cycle_core == 64  # 2 units x 16 lanes x 2
    assert kinds["vnni512"].per_cycle_core == 256  # 2 units x 64 int8 products x 2
    assert kinds["amx_int8"].per_cycle_core == 2048 and kinds["amx_bf16"].per_cycle_core == 1024
    assert kinds["bf16_512"].per_cycle_core is None  # rate not implied by the flags
    assert {k.clock for k in kinds.values()} == {"clock512"}
    # work per loop iteration as peak_kernels.c does it: 16 zmm accumulators
    assert kinds["fma512"].ops_per_iter == 16 * 16 * 2
    assert kinds["amx_int8"].ops_per_iter == 4 * 16 * 16 * 64 * 2


@pytest.mark.parametrize(
    ("flags", "vendor", "fp32_kernel", "fp32_per_cycle", "int8_per_cycle"),
    [
        (EPYC_ZEN4, "AuthenticAMD", "fma512", 32, 128),  # 512-bit ops on 2 x 256-bit pipes
        (EPYC_ZEN5, "AuthenticAMD", "fma512", 64, 256),
        (EPYC_ZEN4, "GenuineIntel", "fma512", 64, 256),  # Skylake-SP..Ice Lake-SP: 2 x 512
        (EPYC_ZEN3, "AuthenticAMD", "fma256", 32, None),
        (EPYC_ZEN3, "GenuineIntel", "fma256", 32, None),  # Haswell and later
    ],
)
def test_peak_per_cycle_from_flags(
    flags: str, vendor: str, fp32_kernel: str, fp32_per_cycle: int, int8_per_cycle: int | None
) -> None:
    kinds = _table(flags, vendor)
    assert kinds[fp32_kernel].per_cycle_core == fp32_per_cycle
    if int8_per_cycle is None:
        assert "vnni512" not in kinds
    else:
        assert kinds["vnni512"].per_cycle_core == int8_per_cycle
    assert not any(k.startswith("amx") for k in kinds)


def test_no_fma_no_peak() -> None:
    assert _table(NO_FMA, "GenuineIntel") == {}
    with pytest.raises(peak.BackendUnavailable, match="no AVX2 FMA"):
        peak.measure_peaks(0.0, 1, flags=parse_flags(f"flags: {NO_FMA}"))


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or not shutil.which("cc"),
    reason="the kernels need x86-64 and a C compiler",
)
def test_fma256_kernel_measures_against_its_theoretical_figure(tmp_path: Path) -> None:
    [fp32] = peak.measure_peaks(0.0, 1, flags={"fma", "avx2"}, cache_dir=tmp_path)
    assert fp32.kernel == "fma256" and fp32.threads == 1 and fp32.gops_best >= fp32.gops > 0
    assert fp32.theoretical_gops == pytest.approx(fp32.clock_ghz * 32)
    assert fp32.fraction == pytest.approx(fp32.gops / fp32.theoretical_gops)
    built = list((tmp_path / "peak").glob("*.so"))
    assert len(built) == 1  # compiled once into the cache, reused by the next call
    stamp = built[0].stat().st_mtime_ns
    peak.measure_peaks(0.0, 1, flags={"fma", "avx2"}, cache_dir=tmp_path)
    assert built[0].stat().st_mtime_ns == stamp


def test_report_shows_the_peak_fraction() -> None:
    row = {
        "status": "ok", "model_name": "m.onnx", "backend": "openvino", "precision": "fp32",
        "device": "cpu", "batch": 1, "mode": "compute", "throughput_fps": 10.0,
        "latency_frame_ms": dict.fromkeys(("mean", "median", "p90", "p95", "p99", "min", "max",
                                           "cv_pct"), 1.0),
        "latency_batch_ms": dict.fromkeys(("mean", "median", "p90", "p95", "p99", "min", "max"),
                                          1.0),
        "achieved_gflops": 50.0, "ceiling_fraction": 0.5, "peak_fraction": 0.125,
    }  # fmt: skip
    p = peak.Peak("fp32", "fma512", "vfmadd (zmm)", 2, 400.0, 410.0, 3.2, 64.0, 409.6, 0.977, "x")
    report = {
        "env": {}, "results": [row], "ceilings": [], "peaks": [p.to_dict()], "warnings": [],
        "config": {"stop_rule": {"min_iterations": 1, "min_seconds": 0}, "baseline": "none",
                   "warmup": {"iterations": 1, "seconds": 0}},
    }  # fmt: skip
    text = format_report(report, env=False)
    assert "%peak" in text and "12.5" in text
    assert "400 G ops/s on 2 core(s) at 3.20 GHz = 98% of 410 theoretical" in text
