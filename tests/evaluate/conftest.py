"""Fixtures for the evaluate tests: a tiny phantom tree (20 patients, 4CH, no sequences), the
real frames of its masks at 32x32, a tiny exported generator, and a fast protocol config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from eval_helpers import SIZE

from echogen_trt.data.dataset import load_pairs


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """Before any session/module fixture trains a segmenter: thread count changes float sums."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def phantom_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from echogen_trt.data.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("phantoms")
    synthesize_dataset(root, 20, views=("4CH",), with_sequence=False, progress=False, seed=2)
    return root


@pytest.fixture(scope="session")
def real_lookup(phantom_tree: Path) -> dict[bytes, np.ndarray]:
    """mask bytes -> the real uint8 frame of that mask, for every train/test frame at SIZE."""
    table = {}
    for split in ("train", "test"):
        for phase in ("ED", "ES"):
            pairs = load_pairs(phantom_tree, split=split, phase=phase, size=(SIZE, SIZE))
            for mask, image in zip(pairs.masks, pairs.images, strict=True):
                table[mask.tobytes()] = np.rint(image * 255).astype(np.uint8)
    return table


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A random-weight width-4 generator at 32x32 exported to ONNX (all three labels kept)."""
    import torch

    from echogen_trt.artifacts.model_meta import ModelMeta
    from echogen_trt.export.onnx_export import export_onnx
    from echogen_trt.models.factory import build_generator, generator_config

    torch.manual_seed(0)
    config = generator_config(width=4, image_size=SIZE)
    generator = build_generator(**config).eval()
    meta = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (SIZE, SIZE), model_config=config)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(generator, path, meta=meta)
    return SimpleNamespace(path=path, meta=meta)
