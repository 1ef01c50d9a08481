"""The environment block: keys always present, parsers robust to what real tools print."""

from __future__ import annotations

import os

import pytest

from echogen_trt.bench import env
from echogen_trt.runtime import availability, cpu

X86_TWO_SOCKETS_HT = "\n\n".join(
    f"processor\t: {i}\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nphysical id\t: {i // 4}\n"
    f"core id\t\t: {(i % 4) // 2}\n"
    for i in range(8)
)  # 2 sockets x 2 cores x 2 threads
ARM_JETSON = "processor\t: 0\nBogoMIPS\t: 62.50\n\nprocessor\t: 1\n\nModel\t: NVIDIA Orin\n"


def test_collect_env_has_every_documented_key() -> None:
    e = env.collect_env()
    assert set(e) >= {"host", "platform", "python", "cpu", "ram_gib", "load_avg", "gpus"}
    assert {"jetson", "versions"} <= set(e)
    assert set(e["cpu"]) == {"model", "arch", "logical_cores", "physical_cores", "usable_cores"}
    assert e["cpu"]["logical_cores"] == os.cpu_count()
    versions = e["versions"]
    assert set(versions) == {"echogen_trt", "numpy", "onnxruntime", "onnx", "torch", "tensorrt"}
    assert set(versions["numpy"]) == {"version", "blas"}
    assert "CPUExecutionProvider" in versions["onnxruntime"]["providers"]
    assert isinstance(e["gpus"], list)
    if not os.path.exists("/etc/nv_tegra_release"):
        assert e["jetson"] is None


def test_tensorrt_stubs_do_not_count_as_tensorrt() -> None:
    trt = availability.tensorrt_module()
    expected = None if trt is None else str(trt.__version__)
    assert env.collect_env()["versions"]["tensorrt"] == expected


def test_torch_block_when_installed() -> None:
    pytest.importorskip("torch")
    info = env.torch_info()
    assert info is not None and {"version", "cuda", "threads", "cuda_available"} <= set(info)


def test_parse_cpuinfo_counts_physical_cores_across_sockets() -> None:
    info = cpu.parse_cpuinfo(X86_TWO_SOCKETS_HT)
    assert info == {"model": "Intel(R) Xeon(R) Gold 6230", "physical_cores": 4}


def test_parse_cpuinfo_arm_without_core_ids() -> None:
    assert cpu.parse_cpuinfo(ARM_JETSON) == {"model": "NVIDIA Orin", "physical_cores": None}
    assert cpu.parse_cpuinfo("") == {"model": None, "physical_cores": None}


def test_parse_nvpmodel() -> None:
    assert env.parse_nvpmodel("NV Power Mode: MAXN\n0\n") == "MAXN (0)"
    assert env.parse_nvpmodel("NV Power Mode: 15W\n") == "15W"
    assert env.parse_nvpmodel("nvpmodel: command not permitted") is None
    assert env.parse_nvpmodel(None) is None


def test_parse_jetson_clocks() -> None:
    locked = (
        "cpu0: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600\n"
        "GPU MinFreq=1300500000 MaxFreq=1300500000 CurrentFreq=1300500000\n"
    )
    free = locked.replace("MinFreq=1300500000", "MinFreq=306000000")
    assert env.parse_jetson_clocks(locked) is True
    assert env.parse_jetson_clocks(free) is False
    assert env.parse_jetson_clocks("") is None
    assert env.parse_jetson_clocks(None) is None


def test_jetson_block_from_release_file_and_tools(tmp_path, monkeypatch) -> None:
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref\n")
    monkeypatch.setattr(env, "TEGRA_RELEASE", release)
    outputs = {"nvpmodel": "NV Power Mode: MAXN\n0\n", "jetson_clocks": None}
    monkeypatch.setattr(env, "_run", lambda cmd, timeout=10.0: outputs.get(cmd[0]))
    info = env.jetson_info()
    assert info is not None
    assert info["l4t_release"].startswith("# R35 (release), REVISION: 3.1")
    assert info["power_mode"] == "MAXN (0)"
    assert info["clocks_locked"] is None  # jetson_clocks --show needs root: unknown, not False
    lines = env.describe_env({**env.collect_env(), "jetson": info})
    assert any(line.startswith("Jetson:") and "MAXN (0)" in line for line in lines)


def test_absent_tools_give_none(monkeypatch) -> None:
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    assert env.gpus_from_smi() == []
    assert env._run(["nvpmodel", "-q"]) is None
