"""Tiny hand-made ONNX files for the error paths (no torch): unsupported ops, no metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from echogen_trt.artifacts.model_meta import ModelMeta

META = ModelMeta("ventricle", (1,), (16, 16))


def _model(nodes: list[onnx.NodeProto], meta: ModelMeta | None) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.full((1, 1, 3, 3), 0.1, np.float32), "w")
    height, width = meta.input_size if meta is not None else (16, 16)
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, height, width])],
        [helper.make_tensor_value_info("echo", TensorProto.FLOAT, ["batch", 1, height, width])],
        [weight],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    if meta is not None:
        helper.set_model_props(model, meta.to_props())
    return model


def write_unsupported_onnx(path: Path) -> Path:
    """Conv -> Frobnicate -> Glorp (two ops no TensorRT parser knows) -> Sigmoid."""
    nodes = [
        helper.make_node("Conv", ["mask", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Frobnicate", ["c"], ["f"], domain="com.example", name="frob1"),
        helper.make_node("Glorp", ["f"], ["g"], domain="com.example", name="glorp2"),
        helper.make_node("Sigmoid", ["g"], ["echo"], name="out3"),
    ]
    onnx.save(_model(nodes, META), path)
    return path


def write_plain_onnx(path: Path, meta: ModelMeta | None = META) -> Path:
    """Conv -> Sigmoid, with echogen metadata unless `meta` is None."""
    nodes = [
        helper.make_node("Conv", ["mask", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Sigmoid", ["c"], ["echo"], name="out1"),
    ]
    onnx.save(_model(nodes, meta), path)
    return path
