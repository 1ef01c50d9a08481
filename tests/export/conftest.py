"""Shared fixtures for tests/export: one tiny generator, exported once per session.

Stable names (the TensorRT builder tests reuse them; rename nothing without updating those):

- `tiny_generator`   torch Generator(width=4, image_size=64) in eval mode, BatchNorm statistics
                     calibrated on masks so its output spans most of [0, 1] (a fresh Keras-init
                     net outputs 0.5 +- 1e-3, which would make every comparison trivially pass).
- `tiny_meta`        ModelMeta for it: experiment "ventricle_atrium" (kept labels 1 and 3, so
                     label 2 is an unkept label), input_size (64, 64), io float, fp32.
- `tiny_masks`       uint8 (4, 64, 64): 2 random-label masks and 2 phantom-like masks.
- `tiny_onnx`        ExportResult: FP32, float io, dynamic batch, opset 17 (`.path`, `.meta`).
- `tiny_onnx_fp16`   ExportResult: `tiny_onnx` converted to FP16 (FP32 I/O kept).
- `tiny_onnx_fused`  ExportResult: FP32, uint8 io (labels selected and output scaled in-graph).
- `tiny_onnx_fixed`  ExportResult: FP32, float io, fixed batch 2.
- `tiny_checkpoint`  Path of a generator-only checkpoint of `tiny_generator` (train.checkpoint).
- `export_dir`       session temporary folder the files above live in (read-only by convention:
                     write your own outputs to `tmp_path`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.export.export_result import ExportResult
from echogen_trt.export.fp16 import convert_file_fp16
from echogen_trt.export.onnx_export import export_onnx
from echogen_trt.export.verify import default_masks

TINY_CONFIG = {"width": 4, "image_size": 64}
TINY_EXPERIMENT = "ventricle_atrium"


def calibrate_batchnorm(generator: Any, size: int, seed: int = 1) -> None:
    """Set BN running statistics from a pass over masks (cumulative average), then eval()."""
    import torch

    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    masks = torch.from_numpy(default_masks((size, size), 4, 4, seed=seed)).float()[:, None]
    generator.train()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*padding='same'.*", category=UserWarning)
        generator(masks)
    for norm in norms:
        norm.momentum = 0.2
    generator.eval()


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="session")
def tiny_generator() -> Any:
    import torch

    from echogen_trt.models.factory import build_generator

    torch.set_num_threads(1)
    torch.manual_seed(0)
    generator = build_generator(**TINY_CONFIG)
    calibrate_batchnorm(generator, TINY_CONFIG["image_size"])
    return generator


@pytest.fixture(scope="session")
def tiny_meta() -> ModelMeta:
    from echogen_trt.models.factory import generator_config

    return ModelMeta(
        experiment=TINY_EXPERIMENT,
        kept_labels=(1, 3),
        input_size=(64, 64),
        step=7,
        checkpoint_sha256="0" * 64,
        package_version="test",
        model_config=generator_config(**TINY_CONFIG),
    )


@pytest.fixture(scope="session")
def tiny_masks() -> np.ndarray:
    return default_masks((64, 64), n_random=2, n_phantom=2, seed=3)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_generator: Any, tiny_meta: ModelMeta, export_dir: Path) -> ExportResult:
    return export_onnx(tiny_generator, export_dir / "tiny.onnx", meta=tiny_meta)


@pytest.fixture(scope="session")
def tiny_onnx_fp16(tiny_onnx: ExportResult, export_dir: Path) -> ExportResult:
    return convert_file_fp16(tiny_onnx.path, export_dir / "tiny.fp16.onnx")


@pytest.fixture(scope="session")
def tiny_onnx_fused(tiny_generator: Any, tiny_meta: ModelMeta, export_dir: Path) -> ExportResult:
    return export_onnx(tiny_generator, export_dir / "tiny.u8.onnx", meta=tiny_meta, fused_io=True)


@pytest.fixture(scope="session")
def tiny_onnx_fixed(tiny_generator: Any, tiny_meta: ModelMeta, export_dir: Path) -> ExportResult:
    return export_onnx(tiny_generator, export_dir / "tiny.b2.onnx", meta=tiny_meta, batch=2)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_generator: Any, export_dir: Path) -> Path:
    from echogen_trt.models.factory import generator_config
    from echogen_trt.train.checkpoint import generator_state, save_checkpoint

    state = generator_state(
        tiny_generator, model_config=generator_config(**TINY_CONFIG),
        experiment=TINY_EXPERIMENT, step=7,
    )  # fmt: skip
    return save_checkpoint(state, export_dir / "tiny.pt")
