"""Which ONNX operators in a model the TensorRT ONNX parser cannot take.

Checked against `trt_supported_ops.txt` (package data, onnx-tensorrt's operator list), so an
export that would fail to parse on a Jetson is caught on the CPU machine that exported it.
Torch-free: the TensorRT builder and `echogen-trt doctor` use it too.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from importlib import resources

import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")


@functools.cache
def supported_ops() -> frozenset[str]:
    """Operator names of the default ONNX domain that TensorRT's parser supports."""
    text = resources.files("echogen_trt.export").joinpath("trt_supported_ops.txt").read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def _as_model(model: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    return onnx.load(os.fspath(model), load_external_data=False)


def _graph_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of `graph` and of the subgraphs in its attributes (If, Loop, Scan bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graph_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graph_nodes(sub)


def iter_ops(model: onnx.ModelProto | str | os.PathLike[str]) -> Iterator[str]:
    """Op names of every node, recursing into subgraphs and model-local functions.

    Default-domain ops are plain names ("Conv"); others are "domain::Op". A call to a local
    function is replaced by the function's body.
    """
    proto = _as_model(model)
    functions = {(f.domain, f.name): f for f in proto.functions}

    def expand(nodes: Iterator[onnx.NodeProto], seen: frozenset[tuple[str, str]]) -> Iterator[str]:
        for node in nodes:
            key = (node.domain, node.op_type)
            if key in functions and key not in seen:
                body = functions[key].node
                yield from expand(_nodes_of(body), seen | {key})
            elif node.domain in DEFAULT_DOMAINS:
                yield node.op_type
            else:
                yield f"{node.domain}::{node.op_type}"

    yield from expand(_graph_nodes(proto.graph), frozenset())


def _nodes_of(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.NodeProto]:
    """Nodes of a function body, with their subgraphs."""
    holder = onnx.GraphProto()
    holder.node.extend(nodes)
    return _graph_nodes(holder)


def op_counts(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, int]:
    """{op name: number of nodes}, most frequent first."""
    return dict(Counter(iter_ops(model)).most_common())


def unsupported_ops(model: onnx.ModelProto | str | os.PathLike[str]) -> list[str]:
    """Sorted op names in `model` (subgraphs included) that TensorRT's ONNX parser lacks."""
    known = supported_ops()
    return sorted({op for op in iter_ops(model) if op not in known})
