"""Careless and hostile use of `generate` and the runtime (issue #22): tampered model metadata,
odd model outputs, one --out shared by two models, symlink loops, a full disk."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper
from runtime_helpers import SIZE, labels_mask, toy_model, write_png

from echogen_trt import fileio
from echogen_trt.cli import cli
from echogen_trt.errors import EchogenError, InputMismatch
from echogen_trt.runtime.mask_to_echo import MaskToEcho


def generate(*args: Any) -> Result:
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


def one_line_error(result: Result, *words: str) -> str:
    """The user error of a failed run: exit 1, an EchogenError (no traceback), one line."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, (EchogenError, SystemExit)), repr(result.exception)
    text = str(result.exception) if isinstance(result.exception, EchogenError) else result.output
    assert "\n" not in text.strip(), text
    for word in words:
        assert word in text, text
    return text


def _with_props(path: Path, changes: dict[str, str]) -> Path:
    model = onnx.load(os.fspath(path))
    for prop in model.metadata_props:
        if prop.key in changes:
            prop.value = changes[prop.key]
    onnx.save(model, os.fspath(path))
    return path


# The variants the outside QA pass found crashing generate/serve/bench/evaluate, and more.
TAMPERED = [
    ("echogen.experiment", "123"),
    ("echogen.experiment", "{not json"),
    ("echogen.kept_labels", '"abc"'),
    ("echogen.kept_labels", "[7]"),
    ("echogen.kept_labels", "[]"),
    ("echogen.kept_labels", "[1, 1]"),
    ("echogen.kept_labels", "[" * 100_000 + "]" * 100_000),
    ("echogen.input_size", "[64]"),
    ("echogen.input_size", "[1e308, 64]"),
    ("echogen.input_size", "[-64, 64]"),
    ("echogen.input_size", "[100000000, 100000000]"),
    ("echogen.input_size", "null"),
    ("echogen.input_size", "9" * 5000),
    ("echogen.io", '"rgb"'),
    ("echogen.precision", "5"),
    ("echogen.input_name", '"nope"'),
    ("echogen.output_name", '"nope"'),
    ("echogen.step", '"x"'),
    ("echogen.model_config", "[]"),
]


@pytest.mark.parametrize(("key", "value"), TAMPERED, ids=[f"{k}={v[:12]}" for k, v in TAMPERED])
def test_tampered_onnx_metadata_is_one_line_naming_the_key(
    tmp_path: Path, key: str, value: str
) -> None:
    model = _with_props(toy_model(tmp_path / "m.onnx"), {key: value})
    write_png(tmp_path / "masks" / "a.png", labels_mask((SIZE, SIZE)))
    result = generate(tmp_path / "masks", "--out", tmp_path / "out", "-m", model)
    text = one_line_error(result)
    assert key.removeprefix("echogen.") in text, text
    assert not (tmp_path / "out").exists()


def _graph_model(path: Path, nodes: list[Any], out_dims: list[Any], consts: list[Any]) -> Path:
    """A float model 'mask' (N, 1, 64, 64) -> 'echo' of `out_dims`, with echogen metadata."""
    from echogen_trt.artifacts.model_meta import ModelMeta

    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("echo", TensorProto.FLOAT, out_dims)],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (SIZE, SIZE)).to_props().items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, os.fspath(path))
    return path


def nhwc_model(path: Path, dims: list[Any]) -> Path:
    return _graph_model(
        path, [helper.make_node("Transpose", ["mask"], ["echo"], perm=[0, 2, 3, 1])], dims, []
    )


@pytest.mark.parametrize(
    "dims", [["n", SIZE, SIZE, 1], ["n", "h", "w", "c"]], ids=["static", "dyn"]
)
def test_nhwc_output_is_refused_not_written_as_64x1_frames(tmp_path: Path, dims: list[Any]) -> None:
    model = nhwc_model(tmp_path / "nhwc.onnx", dims)
    write_png(tmp_path / "masks" / "a.png", labels_mask((SIZE, SIZE)))
    result = generate(tmp_path / "masks", "--out", tmp_path / "out", "-m", model)
    assert result.exit_code == 1, result.output
    assert not list((tmp_path / "out").rglob("*.png"))
    assert "output 'echo' has shape" in (str(result.exception) + result.output)


def nan_model(path: Path) -> Path:
    """echo = 0 * mask + log(2.5 - max(mask)): NaN for a mask holding label 3, else finite."""
    consts = [
        onnx.numpy_helper.from_array(np.array(2.5, np.float32), "c"),
        onnx.numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("ReduceMax", ["mask"], ["top"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Sub", ["c", "top"], ["d"]),
        helper.make_node("Log", ["d"], ["log"]),
        helper.make_node("Mul", ["mask", "zero"], ["z"]),
        helper.make_node("Add", ["z", "log"], ["echo"]),
    ]
    return _graph_model(path, nodes, ["n", 1, SIZE, SIZE], consts)


def test_nan_output_fails_that_frame_and_the_rest_are_written(tmp_path: Path) -> None:
    model = nan_model(tmp_path / "nan.onnx")
    masks = tmp_path / "masks"
    good = labels_mask((SIZE, SIZE))
    good[good == 3] = 1
    write_png(masks / "good.png", good)
    write_png(masks / "bad.png", labels_mask((SIZE, SIZE)))  # holds label 3: NaN frame
    result = generate(masks, "--out", tmp_path / "out", "-m", model)
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["good.png"]
    assert "bad.png" in result.output and "non-finite values (NaN or Inf)" in result.output
    with MaskToEcho(model) as gen:  # the Python API (and evaluate, serve) refuse such frames
        with pytest.raises(InputMismatch, match="non-finite values"):
            gen.generate(labels_mask((SIZE, SIZE)))
        assert gen.nonfinite_frames == 1


def test_two_models_into_one_out_the_second_is_refused(tmp_path: Path) -> None:
    first, second = toy_model(tmp_path / "a.onnx"), toy_model(tmp_path / "b.onnx")
    proto = onnx.load(os.fspath(second))
    proto.graph.initializer[1].CopyFrom(
        onnx.numpy_helper.from_array(np.array([0.9], np.float32), "b")
    )
    onnx.save(proto, os.fspath(second))  # another bias: other frames
    write_png(tmp_path / "masks" / "m.png", labels_mask((SIZE, SIZE)))
    out = tmp_path / "out"
    assert generate(tmp_path / "masks", "--out", out, "-m", first).exit_code == 0
    frame = (out / "m.png").read_bytes()
    again = generate(tmp_path / "masks", "--out", out, "-m", first)
    assert again.exit_code == 0, again.output  # the same model may rewrite or resume
    refused = generate(tmp_path / "masks", "--out", out, "-m", second)
    one_line_error(refused, "holds frames of another model", "a.onnx", "--replace-model")
    assert (out / "m.png").read_bytes() == frame
    replaced = generate(tmp_path / "masks", "--out", out, "-m", second, "--replace-model")
    assert replaced.exit_code == 0, replaced.output
    assert (out / "m.png").read_bytes() != frame
    assert generate(tmp_path / "masks", "--out", out, "-m", first).exit_code == 1


def test_symlink_loop_among_inputs_is_reported_and_the_rest_written(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    write_png(masks / "a.png", labels_mask((SIZE, SIZE)))
    os.symlink("loop.png", masks / "loop.png")
    model = toy_model(tmp_path / "m.onnx")
    for args in ([masks / "loop.png", masks / "a.png"], [masks, "-r"]):
        out = tmp_path / f"out{len(args)}"
        result = generate(*args, "--out", out, "-m", model)
        assert result.exit_code == 1, result.output
        assert "loop.png: is a symlink loop" in result.output
        assert (out / "a.png").is_file()


def test_a_full_disk_stops_generate_after_the_first_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    masks = tmp_path / "masks"
    for i in range(12):
        write_png(masks / f"m{i:02d}.png", labels_mask((SIZE, SIZE), i))
    model, out = toy_model(tmp_path / "m.onnx"), tmp_path / "out"
    calls = []

    class Full:
        def __init__(self, fd: int) -> None:
            os.close(fd)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def write(self, data: bytes) -> int:
            calls.append(1)
            raise OSError(errno.ENOSPC, "No space left on device")

    real = fileio._open_temp
    monkeypatch.setattr(
        fileio, "_open_temp", lambda fd: Full(fd) if calls or _frame_fd(fd) else real(fd)
    )
    result = generate(masks, "--out", out, "-m", model, "--batch-size", "1", "--workers", "1")
    assert result.exit_code == 1, result.output
    assert "stopped early: the disk is full" in result.output
    assert "--skip-existing" in result.output
    failed = int(re.search(r"wrote 0 of 12 frames to .*, (\d+) failed", result.output)[1])
    assert failed == len(calls) <= 4, result.output  # the frames in flight, not all 12


def _frame_fd(fd: int) -> bool:
    """Whether `fd` is a temporary frame (not the manifest): by its name in /proc."""
    return os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and ".png." in os.readlink(
        f"/proc/self/fd/{fd}"
    )


def test_no_vendor_telemetry_files_under_home(tmp_path: Path) -> None:
    """ONNX Runtime's device id and OpenVINO's analytics client id are not written to $HOME."""
    import subprocess
    import sys

    model = toy_model(tmp_path / "m.onnx")
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "import echogen_trt, onnxruntime as ort, sys\n"
        f"ort.InferenceSession({str(model)!r}, providers=['CPUExecutionProvider'])\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('openvino'):\n"
        "    import openvino as ov\n"
        f"    ov.Core().read_model({str(model)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "ECHOGEN_"))}
    subprocess.run([sys.executable, "-c", code], env={**env, "HOME": str(home)}, check=True)
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()) == []
