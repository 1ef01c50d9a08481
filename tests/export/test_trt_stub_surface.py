"""Keep the fake and our code honest against the real TensorRT API (tensorrt-stubs 10.13).

1. Every public class, method, attribute and enum member the fake defines exists in the stubs,
   for each version the fake plays, so the fake cannot invent API.
2. Every TensorRT name our code reads or sets while building and running engines (recorded by
   the fake) exists in the stubs.
3. mypy checks the modules that call TensorRT against the stubs for real. (The project's
   plain `mypy` run cannot: the stubs live in a package without py.typed and have syntax errors,
   so there `tensorrt` is Any. Here they are patched and put on MYPYPATH.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

from echogen_trt.export.trt_build import build_engine
from echogen_trt.runtime.backends.tensorrt import TensorRTBackend
from fakes.fake_cuda import FAKE_JETSON, FakeCuda
from fakes.fake_tensorrt import VERSIONS, fake_trt_used, make_fake_trt
from fakes.stubs import stub_api, stub_root, write_sanitized_stubs

pytestmark = pytest.mark.skipif(stub_root() is None, reason="tensorrt-stubs not installed")
ROOT = Path(__file__).resolve().parents[2]
STRICT_FILES = [
    "src/echogen_trt/runtime/gpu/trt_api.py",
    "src/echogen_trt/export/timing_cache.py",
    "src/echogen_trt/export/trt_build.py",
    "src/echogen_trt/export/trt_inspect.py",
    "src/echogen_trt/export/trt_version_policy.py",
    "src/echogen_trt/runtime/backends/tensorrt.py",
]


def public_names(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__ != "builtins":
            names |= {n for n in vars(klass) if not n.startswith("_")}
    return names


@pytest.mark.parametrize("version", VERSIONS)
def test_fake_defines_only_stub_names(version):
    api, trt = stub_api(), make_fake_trt(version)
    classes = object.__getattribute__(trt, "_st").classes
    problems = [f"class {stub}" for stub in classes if stub not in api]
    for stub, cls in classes.items():
        problems += [f"{stub}.{name}" for name in sorted(public_names(cls) - api.get(stub, set()))]
    module = {n for n in vars(trt) if not n.startswith("_")} | {"__version__"}
    problems += sorted(module - api[""])
    assert problems == []
    assert len(classes) > 20  # the check saw the whole fake


def test_fake_versions_differ_where_tensorrt_does():
    old, mid, new = (make_fake_trt(v) for v in VERSIONS)
    assert hasattr(old.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(old.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    assert not hasattr(old, "IProgressMonitor")
    assert hasattr(mid.BuilderFlag, "FP16") and hasattr(mid, "IProgressMonitor")
    assert int(mid.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert not hasattr(new.BuilderFlag, "FP16") and not hasattr(new.BuilderFlag, "INT8")
    assert not hasattr(new.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(new.Builder, "platform_has_fast_fp16")
    config = old.Builder(old.Logger()).create_builder_config()
    with pytest.raises(AttributeError, match="progress_monitor"):
        config.progress_monitor = None  # pybind objects refuse unknown attributes


def _exercise(version: str, source: Path, fp32_source: Path, tmp_path: Path) -> set:
    """Build `source` (fp16, timing cache), `fp32_source` as fp32 (not on 11.x) and run an
    engine: the (class, name) pairs our code touched."""
    cuda = FakeCuda()
    trt = make_fake_trt(version, cuda=cuda)
    result = build_engine(source, tmp_path / "a.engine", trt=trt, cuda=cuda, max_batch=2,
                          timing_cache=tmp_path / f"{version}.cache")  # fmt: skip
    if not version.startswith("11"):
        build_engine(fp32_source, tmp_path / "b.engine", trt=trt, cuda=cuda, precision="fp32")
    with TensorRTBackend(str(result.engine_path), trt=trt, cuda=cuda) as backend:
        backend.infer({"mask": np.zeros((2, 1, 64, 64), np.float32)})
    return fake_trt_used(trt)


EXPECTED_CALLS = {
    ("IExecutionContext", "execute_async_v3"), ("IExecutionContext", "set_input_shape"),
    ("IExecutionContext", "set_tensor_address"), ("OnnxParser", "parse"),
    ("Builder", "build_serialized_network"), ("EngineInspector", "get_engine_information"),
    ("IBuilderConfig", "set_memory_pool_limit"), ("IBuilderConfig", "profiling_verbosity"),
    ("ICudaEngine", "get_tensor_profile_shape"), ("ITimingCache", "serialize"),
}  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_our_code_uses_only_stub_names(version, tiny_onnx, tiny_onnx_fp16, tmp_path):
    fp32, fp16 = tiny_onnx.path, tiny_onnx_fp16.path
    used = _exercise(version, fp16 if version.startswith("11") else fp32, fp32, tmp_path)
    if version.startswith("10"):  # and the strongly typed path
        used |= _exercise(version, fp16, fp32, tmp_path)
    api = stub_api()
    unknown = sorted(f"{cls or 'tensorrt'}.{name}" for cls, name in used
                     if name not in api.get(cls, set()))  # fmt: skip
    assert unknown == []
    assert used >= EXPECTED_CALLS  # the recording saw the calls
    if version.startswith("8"):
        assert ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH") in used
    if version.startswith("10"):
        assert ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED") in used
        assert ("IBuilderConfig", "progress_monitor") in used
    if version.startswith("11"):
        assert not any(cls == "BuilderFlag" for cls, _ in used)


def test_dla_code_path_uses_only_stub_names(tiny_onnx, tmp_path):
    cuda = FakeCuda(devices=[FAKE_JETSON])
    trt = make_fake_trt("10.3.0", cuda=cuda, dla_cores=2)
    build_engine(tiny_onnx.path, tmp_path / "d.engine", trt=trt, cuda=cuda, dla_core=1,
                 target="jetson")  # fmt: skip
    used, api = fake_trt_used(trt), stub_api()
    assert {("IBuilderConfig", "DLA_core"), ("IBuilderConfig", "default_device_type"),
            ("DeviceType", "DLA"), ("BuilderFlag", "GPU_FALLBACK")} <= used  # fmt: skip
    assert all(name in api.get(cls, set()) for cls, name in used)


def _mypy_config(path: Path) -> Path:
    """The project's [tool.mypy] as an ini file, plus: ignore errors inside the stubs."""
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    lines = ["[mypy]"]
    lines += [f"{k} = {v}" for k, v in mypy.items() if k not in ("files", "overrides")]
    for override in mypy.get("overrides", []):
        modules = override["module"]
        modules = ",".join(modules) if isinstance(modules, list) else modules
        lines.append(f"[mypy-{modules}]")
        lines += [f"{k} = {v}" for k, v in override.items() if k != "module"]
    lines += ["[mypy-tensorrt.*,tensorrt_bindings.*]", "ignore_errors = True"]
    path.write_text("\n".join(lines).replace("= true", "= True").replace("= false", "= False"))
    return path


@pytest.mark.slow
def test_trt_modules_type_check_against_the_stubs(tmp_path):
    stubs = write_sanitized_stubs(tmp_path / "stubs")
    probe = tmp_path / "probe_trt.py"  # proves the stubs are really used: this must fail
    probe.write_text(
        "import tensorrt as trt\n\n\n"
        "def configure(config: trt.IBuilderConfig) -> None:\n"
        "    config.max_workspace_size = 1 << 30  # removed in TensorRT 10\n"
    )
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(_mypy_config(tmp_path / "m.ini")),
           "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", *STRICT_FILES,
           str(probe)]  # fmt: skip
    env = {**os.environ, "MYPYPATH": str(stubs)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert [e for e in errors if "probe_trt.py" not in e] == []
    assert any('"IBuilderConfig" has no attribute "max_workspace_size"' in e for e in errors), (
        proc.stdout + proc.stderr
    )
