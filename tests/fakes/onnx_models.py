"""Tiny hand-made ONNX files for the error paths (no torch): unsupported ops, no metadata."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from echogen_trt.artifacts.model_meta import ModelMeta

META = ModelMeta("ventricle", (1,), (16, 16))
TOY_SIZE = 64


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
        in_type, out_type = TensorProto.FLOAT, TensorProto.FLOAT
        dims = [batch, 1, TOY_SIZE, TOY_SIZE]
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
        in_type, out_type, dims = TensorProto.UINT8, TensorProto.UINT8, [batch, TOY_SIZE, TOY_SIZE]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("mask", in_type, dims)],
        [helper.make_tensor_value_info("echo", out_type, dims)],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (TOY_SIZE, TOY_SIZE), io=io)
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return path
