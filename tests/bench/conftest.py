"""Tiny exported models for the benchmark tests, written once per session.

- `bench_models`: folder holding `tiny.onnx` (width 4, 64x64, FP32, dynamic batch),
  `tiny.fp16.onnx` (its FP16 conversion) and `tiny.b1.onnx` (the same with a fixed batch of 1).
- `wide8_onnx`: a width-8 256x256 FP32 export (the reference depth at 1/64 of its conv FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from echogen_trt.artifacts.model_meta import ModelMeta  # noqa: E402
from echogen_trt.export.fp16 import convert_file_fp16  # noqa: E402
from echogen_trt.export.onnx_export import export_onnx  # noqa: E402
from echogen_trt.models.factory import build_generator, generator_config  # noqa: E402

TINY = {"width": 4, "image_size": 64}


def _export(path: Path, batch: int | None = None, **config: object) -> Path:
    torch.manual_seed(0)
    full = generator_config(**config)
    size = int(full["image_size"])
    meta = ModelMeta(
        experiment="ventricle_myocard_atrium",
        kept_labels=(1, 2, 3),
        input_size=(size, size),
        model_config=full,
    )
    export_onnx(build_generator(**full).eval(), path, meta=meta, batch=batch)
    return path


@pytest.fixture
def export_model() -> Callable[..., Path]:
    """`_export` for tests: `from conftest import ...` is ambiguous with several conftest.py."""
    return _export


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("bench_models")
    _export(folder / "tiny.onnx", **TINY)
    convert_file_fp16(folder / "tiny.onnx", folder / "tiny.fp16.onnx")
    _export(folder / "tiny.b1.onnx", batch=1, **TINY)
    return folder


@pytest.fixture(scope="session")
def wide8_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return _export(tmp_path_factory.mktemp("wide8") / "w8.onnx", width=8, image_size=256)
