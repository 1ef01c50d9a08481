"""Routing model files to backends, lazily, with install hints when a backend is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime import registry
from echogen_trt.runtime.backends.onnxrt import OnnxRuntimeBackend


@pytest.mark.parametrize(
    ("name", "kind"),
    [("m.onnx", "onnxrt"), ("m.ENGINE", "tensorrt"), ("m.plan", "tensorrt"), ("best.pt", "torch"),
     ("w.pth", "torch")],
)  # fmt: skip
def test_kind_from_suffix(name: str, kind: str) -> None:
    assert registry.resolve_kind(name) == kind
    assert registry.resolve_kind(name, "auto") == kind
    assert registry.resolve_kind(name, kind) == kind


def test_named_kind_for_an_unknown_suffix() -> None:
    assert registry.resolve_kind("model.trt", "tensorrt") == "tensorrt"
    with pytest.raises(ConfigError, match=r"unknown suffix '\.trt'.*--backend"):
        registry.resolve_kind("model.trt")
    with pytest.raises(ConfigError, match=r"backend 'tflite' \| unknown"):
        registry.resolve_kind("m.onnx", "tflite")


@pytest.mark.parametrize(
    ("name", "kind", "hint"),
    [
        ("m.onnx", "tensorrt", "build-engine"),
        ("best.pt", "onnxrt", "echogen-trt export"),
        ("m.engine", "onnxrt", "the .onnx file the engine was built from"),
    ],
)
def test_mismatched_kind_says_how_to_convert(name: str, kind: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=rf"cannot be served by the {kind} backend.*{hint}"):
        registry.resolve_kind(name, kind)


def test_open_backend_is_unopened_and_typed(tmp_path: Path, toy) -> None:  # type: ignore[no-untyped-def]
    backend = registry.open_backend(toy())
    assert isinstance(backend, OnnxRuntimeBackend) and not backend.is_open
    with pytest.raises(ConfigError, match=r"missing\.onnx \| not found"):
        registry.open_backend(tmp_path / "missing.onnx")


def test_missing_torch_names_the_train_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "best.pt").write_bytes(b"x")
    real = registry.has_module
    monkeypatch.setattr(registry, "has_module", lambda name: name != "torch" and real(name))
    with pytest.raises(BackendUnavailable, match=r"pip install 'echogen-trt\[train\]'"):
        registry.open_backend(tmp_path / "best.pt")
    assert registry.available_backends()["torch"] == (False, "torch is not installed")


def test_engines_route_to_tensorrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    ok, _ = registry.backend_availability("tensorrt")
    if not ok:
        with pytest.raises(BackendUnavailable, match=r"backend tensorrt \| unavailable.*\[trt\]"):
            registry.open_backend(engine)
    if registry.has_module(registry.record("tensorrt").module.split(":")[0]):
        monkeypatch.setattr(registry, "backend_availability", lambda kind: (True, "pretend"))
        backend = registry.open_backend(engine)
        assert type(backend).__name__ == "TensorRTBackend" and not backend.is_open


def test_available_backends_never_imports_torch() -> None:
    was_loaded = "torch" in sys.modules
    table = registry.available_backends()
    assert set(table) == {"tensorrt", "onnxrt", "torch", "openvino"}
    assert table["onnxrt"][0] and "CPUExecutionProvider" in table["onnxrt"][1]
    if not was_loaded:
        assert "torch" not in sys.modules


def test_describe_choice(tmp_path: Path, toy) -> None:  # type: ignore[no-untyped-def]
    assert registry.describe_choice(toy()).startswith("onnxrt: onnxruntime ")
    assert registry.describe_choice(tmp_path / "nope.onnx").endswith("(file not found)")
    assert registry.describe_choice("x.bin").startswith("none: model x.bin | unknown suffix")
    trt_ok, _ = registry.backend_availability("tensorrt")
    line = registry.describe_choice(tmp_path / "m.engine")
    assert line.startswith("tensorrt: " + ("" if trt_ok else "unavailable"))
