"""unsupported_ops: the TensorRT op list, subgraphs, foreign domains and local functions."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from echogen_trt.export.export_result import ExportResult
from echogen_trt.export.ops import op_counts, supported_ops, unsupported_ops


def _value(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 2])


def hand_made_model() -> onnx.ModelProto:
    """Relu -> Det (unsupported) -> If whose branches hold BitShift (unsupported) and Relu,
    plus a com.microsoft op and a call to a local function whose body holds Col2Im."""
    then_graph = helper.make_graph(
        [helper.make_node("BitShift", ["a", "a"], ["t"], direction="LEFT")],
        "then", [], [_value("t")],
    )  # fmt: skip
    else_graph = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["e"])], "else", [], [_value("e")]
    )
    local = helper.make_function(
        "local.fn", "Unfold", ["u"], ["v"],
        [helper.make_node("Col2Im", ["u", "s", "s"], ["v"])],
        [helper.make_opsetid("", 17)],
    )  # fmt: skip
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Det", ["a"], ["d"]),
        helper.make_node("Greater", ["d", "d"], ["c"]),
        helper.make_node("If", ["c"], ["b"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("FusedConv", ["b"], ["f"], domain="com.microsoft"),
        helper.make_node("Unfold", ["f"], ["y"], domain="local.fn"),
    ]
    graph = helper.make_graph(nodes, "g", [_value("x")], [_value("y")])
    return helper.make_model(graph, functions=[local])


def test_supported_list_is_parsed_from_package_data() -> None:
    ops = supported_ops()
    assert {"Conv", "ConvTranspose", "BatchNormalization", "Sigmoid", "Where", "Round"} <= ops
    assert not any(op.startswith("#") or " " in op for op in ops)
    assert "Det" not in ops and len(ops) > 100


def test_flags_unsupported_ops_in_subgraphs_domains_and_functions() -> None:
    bad = unsupported_ops(hand_made_model())
    assert bad == ["BitShift", "Col2Im", "Det", "com.microsoft::FusedConv"]
    assert "local.fn::Unfold" not in bad  # the call is replaced by its body


def test_op_counts_recurse_and_accept_paths(tmp_path: Path) -> None:
    path = tmp_path / "hand.onnx"
    onnx.save(hand_made_model(), str(path))
    counts = op_counts(path)
    assert counts["Relu"] == 2  # the top-level one and the one in the else branch
    assert counts["BitShift"] == 1 and counts["If"] == 1
    assert unsupported_ops(path) == unsupported_ops(hand_made_model())


def test_exported_generator_has_only_supported_ops(
    tiny_onnx: ExportResult, tiny_onnx_fused: ExportResult, tiny_onnx_fp16: ExportResult
) -> None:
    for result in (tiny_onnx, tiny_onnx_fused, tiny_onnx_fp16):
        assert unsupported_ops(result.path) == []
    assert op_counts(tiny_onnx.path)["Conv"] == 10
