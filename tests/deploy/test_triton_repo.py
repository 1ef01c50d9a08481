"""`triton-repo`: every config.pbtxt parses as Triton's ModelConfig protobuf and matches the
graph it describes; folders appear whole; bad input is refused with one line (torch-free)."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from deploy_helpers import engine_with_provenance

from echogen_trt.cli import cli
from echogen_trt.deploy.triton_repo import RepoOptions, write_triton_repo
from echogen_trt.errors import EchogenError
from fakes.onnx_models import TOY_SIZE, toy_model

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] not installed"
)
text_format = pytest.importorskip("google.protobuf.text_format")


def parse_config(folder: Path) -> object:
    config = model_config_pb2.ModelConfig()
    text_format.Parse((folder / "config.pbtxt").read_text(), config)
    return config


def graph_io(path: Path) -> list[tuple[str, int, list[int]]]:
    """(name, TensorProto elem type, dims with -1 for symbolic) of the ONNX graph's inputs and
    outputs, read here independently of the code under test."""
    graph = onnx.load(os.fspath(path)).graph
    return [
        (
            v.name,
            v.type.tensor_type.elem_type,
            [d.dim_value or -1 for d in v.type.tensor_type.shape.dim],
        )
        for v in [*graph.input, *graph.output]
    ]


TRITON_TYPE = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.UINT8: "TYPE_UINT8"}


@pytest.mark.parametrize(
    ("io", "batch", "instance"),
    [("float", "batch", "gpu"), ("uint8", "batch", "cpu"), ("float", 2, "gpu")],
    ids=["float-dynamic", "fused-uint8", "static-batch-2"],
)
def test_onnx_configs_parse_and_match_the_graph(
    tmp_path: Path, io: str, batch: int | str, instance: str
) -> None:
    model = toy_model(tmp_path / f"toy_{io}.onnx", io, batch)
    write_triton_repo([model], tmp_path / "repo", RepoOptions(max_batch=16, instance=instance))
    folder = tmp_path / "repo" / model.stem
    config = parse_config(folder)
    assert config.name == model.stem and config.backend == "onnxruntime"
    assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
    described = [(t.name, t.data_type, list(t.dims)) for t in [*config.input, *config.output]]
    actual = graph_io(model)
    if batch == "batch":
        assert config.max_batch_size == 16
        assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
        assert config.dynamic_batching.max_queue_delay_microseconds == 5000
        actual = [(n, t, dims[1:]) for n, t, dims in actual]  # Triton adds the batch axis
    else:  # a static batch: full shapes, no batching
        assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    type_names = model_config_pb2.DataType.Name
    assert [(n, type_names(t), d) for n, t, d in described] == [
        (n, TRITON_TYPE[t], d) for n, t, d in actual
    ]
    kind = model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind)
    assert kind == ("KIND_CPU" if instance == "cpu" else "KIND_GPU")
    if io == "uint8":
        assert [type_names(t.data_type) for t in config.input] == ["TYPE_UINT8"]
        assert list(config.output[0].dims) == [TOY_SIZE, TOY_SIZE]


def test_engine_config_from_its_profile_and_container_note(tmp_path: Path) -> None:
    engine = engine_with_provenance(tmp_path)
    result = CliRunner().invoke(cli, ["triton-repo", str(engine), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "tritonserver:25.11-trtllm-python-py3" in result.output  # TensorRT 10.13
    folder = tmp_path / "r" / "fused"
    config = parse_config(folder)
    assert config.backend == "tensorrt" and config.max_batch_size == 24
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 24]
    assert [(t.name, list(t.dims)) for t in config.input] == [("mask", [64, 64])]
    assert (folder / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert "TensorRT 10.13.3.9" in (folder / "config.pbtxt").read_text()


def test_unknown_tensorrt_version_points_to_the_support_matrix(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "triton-repo",
            str(engine_with_provenance(tmp_path, "9.2.0")),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0 and "no Triton container in NVIDIA's table" in result.output


def test_openvino_ir_config(tmp_path: Path) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from echogen_trt.artifacts.onnx_file import read_meta
    from echogen_trt.artifacts.openvino_ir import load_model, save_ir

    onnx_path = toy_model(tmp_path / "toy.onnx", "float")
    ir = tmp_path / "ir" / "toy_ir.xml"
    save_ir(load_model(onnx_path), ir, read_meta(onnx_path))
    write_triton_repo([ir], tmp_path / "repo", RepoOptions())
    folder = tmp_path / "repo" / "toy_ir"
    config = parse_config(folder)
    assert config.backend == "openvino" and config.max_batch_size == 32
    assert [(t.name, list(t.dims)) for t in config.input] == [("mask", [1, TOY_SIZE, TOY_SIZE])]
    assert sorted(p.name for p in (folder / "1").iterdir()) == ["model.bin", "model.xml"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda d: [d / "m.pt"], "suffix '.pt'"),
        (lambda d: [d / "missing.onnx"], "not found"),
        (lambda d: [toy_model(d / "m.onnx"), toy_model(d / "sub" / "m.onnx")], "two files"),
    ],
)
def test_refusals_write_nothing(tmp_path: Path, setup, reason: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(EchogenError, match=reason) as info:
        write_triton_repo(setup(tmp_path), tmp_path / "repo", RepoOptions())
    assert "\n" not in str(info.value)
    assert not (tmp_path / "repo").exists() or not list((tmp_path / "repo").iterdir())


def test_an_existing_model_folder_is_never_replaced(tmp_path: Path) -> None:
    model = toy_model(tmp_path / "toy.onnx")
    (tmp_path / "repo" / "toy").mkdir(parents=True)
    (tmp_path / "repo" / "toy" / "keep.txt").write_text("mine")
    with pytest.raises(EchogenError, match="already exists"):
        write_triton_repo([model], tmp_path / "repo", RepoOptions())
    assert (tmp_path / "repo" / "toy" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["toy"]  # no staging left


def test_several_models_in_one_repository(tmp_path: Path) -> None:
    models = [toy_model(tmp_path / "a.onnx"), toy_model(tmp_path / "b.onnx", "uint8")]
    result = CliRunner().invoke(
        cli, ["triton-repo", *map(str, models), "--out", str(tmp_path / "repo"), "--max-batch", "4"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["a", "b"]
    for name in ("a", "b"):
        config = parse_config(tmp_path / "repo" / name)
        assert config.max_batch_size == 4 and list(
            config.dynamic_batching.preferred_batch_size
        ) == [4]
