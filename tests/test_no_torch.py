"""The runtime and `generate` work with torch impossible to import (a Jetson without PyTorch)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from echogen_trt.artifacts.model_meta import ModelMeta

CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
    masks, out, model, ckpt = sys.argv[1:5]

    import echogen_trt.runtime
    import echogen_trt.runtime.backends.onnxrt
    import echogen_trt.cli.generate
    from click.testing import CliRunner
    from echogen_trt.cli import cli
    from echogen_trt.errors import BackendUnavailable
    from echogen_trt.runtime import MaskToEcho, open_backend

    result = CliRunner().invoke(cli, ["generate", masks, "--out", out, "--model", model, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    with MaskToEcho(model) as gen:
        frames = gen.generate([__import__("numpy").zeros((20, 30), "uint8")])
    try:
        open_backend(ckpt)
        served_pt = "yes"
    except BackendUnavailable as err:
        served_pt = str(err)
    print(json.dumps({
        "summary": json.loads(result.stdout),
        "frames": list(frames.shape),
        "pt": served_pt,
        "torch_loaded": any(m == "torch" or m.startswith("torch.") for m in sys.modules),
    }))
    """
)


def _toy_onnx(path: Path) -> None:
    """Conv + Sigmoid with echogen metadata, built without torch."""
    weight = numpy_helper.from_array(np.full((1, 1, 3, 3), 0.2, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["mask", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["echo"]),
    ]
    dims = ["batch", 1, 32, 32]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("echo", TensorProto.FLOAT, dims)],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMeta("ventricle", (1,), (32, 32))
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def test_runtime_and_generate_without_torch(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(3):
        mask = np.zeros((40 + i, 50), np.uint8)
        mask[5:20, 10 + i : 30] = 1
        mask[25:35, 10:30] = 3
        cv2.imwrite(str(masks / f"m{i}.png"), mask)
    _toy_onnx(tmp_path / "toy.onnx")
    (tmp_path / "best.pt").write_bytes(b"not used")
    args = [masks, tmp_path / "out", tmp_path / "toy.onnx", tmp_path / "best.pt"]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["torch_loaded"] is False
    assert report["summary"]["written"] == 3 and report["summary"]["backend"] == "onnxrt"
    assert report["frames"] == [1, 32, 32]
    assert "pip install 'echogen-trt[train]'" in report["pt"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["echogen-generate.json", "m0.png", "m1.png", "m2.png"]
