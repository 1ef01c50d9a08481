"""Fixtures for the runtime: tiny models (a real exported generator, and torch-free toy graphs)
and mask files written in-test.

The real models come from one random-weight generator (width 4, 64x64) saved as a checkpoint and
exported with `export_onnx` once per session, so ONNX Runtime and PyTorch serve the same weights.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from runtime_helpers import SIZE, labels_mask, toy_model, write_png

EXPERIMENT = "ventricle_atrium"  # keeps 1 and 3: label 2 must be dropped by preprocessing


def _spread(generator: object, probe: np.ndarray) -> None:
    """Scale random weights until the output spans the grey range (not all ~127, not 0/255),
    so parity tests compare informative frames."""
    import torch

    weights = [p for p in generator.parameters() if p.ndim > 1]  # type: ignore[attr-defined]
    x = torch.from_numpy(probe.astype(np.float32))[None, None]
    with torch.no_grad():
        for _ in range(40):
            std = float((generator(x) * 255).std())  # type: ignore[operator]
            if std > 25:
                return
            for p in weights:
                p.mul_(1.05)
    raise AssertionError("could not spread the test generator's output")


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """best.pt plus its exports: model.onnx (float, dynamic batch), fused.onnx (uint8 io),
    static2.onnx (batch fixed at 2), and model.xml (model.onnx as an OpenVINO IR) when openvino
    is installed."""
    pytest.importorskip("torch")
    import torch

    from echogen_trt.artifacts.model_meta import meta_from_checkpoint_info
    from echogen_trt.export.onnx_export import export_onnx
    from echogen_trt.models.factory import build_generator, generator_config
    from echogen_trt.train.checkpoint import generator_state, load_generator, save_checkpoint

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    config = generator_config(width=4, image_size=SIZE)
    generator = build_generator(**config).eval()
    _spread(generator, labels_mask((SIZE, SIZE)))
    ckpt = root / "best.pt"
    save_checkpoint(generator_state(generator, model_config=config, experiment=EXPERIMENT), ckpt)
    loaded, info = load_generator(ckpt)
    meta = meta_from_checkpoint_info(info)
    paths = {"ckpt": ckpt}
    for name, kwargs in (("onnx", {}), ("fused", {"fused_io": True}), ("static2", {"batch": 2})):
        paths[name] = root / f"{name}.onnx"
        export_onnx(loaded, paths[name], meta=meta, **kwargs)  # type: ignore[arg-type]
    if importlib.util.find_spec("openvino") is not None:  # the same model as an OpenVINO IR
        from echogen_trt.artifacts.openvino_ir import load_model, save_ir

        paths["ir"] = root / "model.xml"
        save_ir(load_model(paths["onnx"]), paths["ir"], meta)
    return SimpleNamespace(**paths, meta=meta)


@pytest.fixture
def toy(tmp_path: Path) -> Callable[..., Path]:
    """toy(io="float", batch="batch") -> path of a fresh toy ONNX model."""

    def make(io: str = "float", batch: int | str = "batch") -> Path:
        return toy_model(tmp_path / f"toy_{io}_{batch}.onnx", io, batch)

    return make


@pytest.fixture
def mask_dir(tmp_path: Path) -> Path:
    """masks/ with four PNG masks of different sizes (labels 0..3)."""
    root = tmp_path / "masks"
    for i, shape in enumerate([(64, 64), (80, 100), (120, 90), (50, 70)]):
        write_png(root / f"m{i}.png", labels_mask(shape, i))
    return root
