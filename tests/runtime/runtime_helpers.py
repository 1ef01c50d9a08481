"""Helpers shared by the runtime tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from echogen_trt.artifacts.model_meta import ModelMeta

SIZE = 64


def labels_mask(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """uint8 (H, W) with labels 0..3 in off-centre blocks that move with `seed`."""
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    s = seed % 5
    mask[h // 8 + s : h // 2, w // 5 : w // 2 + s] = 1
    mask[h // 8 + s : h // 2, w // 2 + s : w // 2 + s + max(2, w // 12)] = 2
    mask[h // 2 + 2 : h - 3, w // 4 - s : w // 2 + 2 * s] = 3
    return mask


def write_png(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", mask)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def read_png(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)


def toy_model(path: Path, io: str = "float", batch: int | str = "batch") -> Path:
    """A torch-free ONNX stand-in: 3x3 conv + sigmoid, with echogen metadata (all labels kept)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.6, (1, 1, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(np.array([-0.8], np.float32), "b")
    consts = [weight, bias]
    conv = helper.make_node("Conv", ["x4", "w", "b"], ["c"], pads=[1, 1, 1, 1])
    sig = helper.make_node("Sigmoid", ["c"], ["y"])
    if io == "float":
        nodes = [helper.make_node("Identity", ["mask"], ["x4"]), conv, sig]
        nodes.append(helper.make_node("Identity", ["y"], ["echo"]))
        in_type, out_type, dims = TensorProto.FLOAT, TensorProto.FLOAT, [batch, 1, SIZE, SIZE]
    else:
        consts += [
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
            numpy_helper.from_array(np.array(255.0, np.float32), "k"),
            numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        ]
        nodes = [
            helper.make_node("Cast", ["mask"], ["xf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["xf", "axis"], ["x4"]),
            conv,
            sig,
            helper.make_node("Mul", ["y", "k"], ["s"]),
            helper.make_node("Clip", ["s", "lo", "k"], ["sc"]),
            helper.make_node("Round", ["sc"], ["r"]),
            helper.make_node("Squeeze", ["r", "axis"], ["r3"]),
            helper.make_node("Cast", ["r3"], ["echo"], to=TensorProto.UINT8),
        ]
        in_type, out_type, dims = TensorProto.UINT8, TensorProto.UINT8, [batch, SIZE, SIZE]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("mask", in_type, dims)],
        [helper.make_tensor_value_info("echo", out_type, dims)],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (SIZE, SIZE), io=io)
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return path
