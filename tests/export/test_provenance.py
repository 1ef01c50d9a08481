"""Engine provenance: round trip, mismatch messages, the rebuild command (torch-free)."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, replace

import pytest

from echogen_trt.artifacts import provenance as pv
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.cli.build_engine import build_engine as build_engine_command
from echogen_trt.errors import EngineMismatch
from echogen_trt.export.trt_presets import resolve_options

META = ModelMeta("ventricle_atrium", (1, 3), (64, 64), precision="fp16")
HERE = pv.Environment("10.3.0.26", "NVIDIA GeForce RTX 4090", "8.9")


def make_prov(**changes: object) -> pv.Provenance:
    prov = pv.Provenance(
        tensorrt_version=HERE.tensorrt_version, device_name=HERE.device_name,
        compute_capability=HERE.compute_capability, precision="fp16", strongly_typed=True,
        profile={"mask": {"min": [1, 1, 64, 64], "opt": [8, 1, 64, 64], "max": [32, 1, 64, 64]}},
        io=[{"name": "mask", "mode": "input", "dtype": "float32", "shape": [-1, 1, 64, 64]}],
        onnx_path="/models/my model.fp16.onnx", onnx_sha256="ab" * 32,
        options=pv.BuildOptions(timing_cache="/cache dir/t.bin"), model_meta=asdict(META),
        build_seconds=12.5, layer_precisions={"fp16": 20},
    )  # fmt: skip
    return replace(prov, **changes)  # type: ignore[arg-type]


def test_round_trip(tmp_path):
    engine = tmp_path / "model.engine"
    prov = make_prov()
    path = pv.write_provenance(prov, engine)
    assert path == tmp_path / "model.engine.json" == pv.provenance_path(engine)
    back = pv.read_provenance(engine)
    assert back == prov
    assert back.meta == META  # tuples restored from JSON lists
    assert back.environment == HERE


def test_compatible_engine_passes(tmp_path):
    """Same machine, same ONNX, the engine file the build hashed: no mismatch, no error."""
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine bytes")
    pv.write_provenance(make_prov(), engine)
    prov = pv.read_provenance(engine)
    assert prov.engine_sha256 == pv.sha256_file(engine)  # recorded, so it is checked
    assert pv.mismatches(prov, HERE, onnx_sha256="ab" * 32, engine_path=engine) == []
    pv.check_compatible(prov, HERE, engine_path=engine, onnx_sha256="ab" * 32)  # no raise
    engine.write_bytes(b"other bytes")  # the same calls now see the swapped file
    assert pv.mismatches(prov, HERE, onnx_sha256="ab" * 32, engine_path=engine) != []
    with pytest.raises(EngineMismatch, match=r"model\.engine has sha256 .*replaced or modified"):
        pv.check_compatible(prov, HERE, engine_path=engine, onnx_sha256="ab" * 32)


def test_every_mismatch_is_listed_with_the_rebuild_command():
    prov = make_prov(tensorrt_version="8.5.2.2", compute_capability="8.7", device_name="Orin")
    with pytest.raises(EngineMismatch) as info:
        pv.check_compatible(prov, HERE, engine_path="out/model.engine", onnx_sha256="cd" * 32)
    message = str(info.value)
    assert message.startswith("out/model.engine | was built for another machine")
    assert "TensorRT: engine built with 8.5.2.2, this machine has 10.3.0.26" in message
    assert "compute capability 8.7 (Orin), this GPU is 8.9 (NVIDIA GeForce RTX 4090)" in message
    assert "ONNX: /models/my model.fp16.onnx changed since the engine was built" in message
    assert message.count("\n  - ") == 3
    assert pv.rebuild_command(prov, "out/model.engine") in message


def test_same_architecture_other_model_is_a_mismatch():
    found = pv.mismatches(make_prov(device_name="NVIDIA RTX A6000"), HERE)
    assert found == ["GPU model: engine built on 'NVIDIA RTX A6000', this is "
                     "'NVIDIA GeForce RTX 4090'"]  # fmt: skip


def test_rebuild_command_reproduces_the_build_options():
    """The command in the message parses with the real CLI into the same options."""
    options = resolve_options(target="jetson", dla_core=1, timing_cache="/cache dir/t.bin",
                              workspace_mb=512)  # fmt: skip
    prov = make_prov(options=options)
    command = pv.rebuild_command(prov, "/engines/my model.engine")
    argv = shlex.split(command)
    assert argv[:2] == ["echogen-trt", "build-engine"]
    ctx = build_engine_command.make_context("build-engine", argv[2:])
    params = ctx.params
    assert params["onnx_path"] == prov.onnx_path and params["out"] == "/engines/my model.engine"
    keys = ("precision", "min_batch", "opt_batch", "max_batch", "workspace_mb", "timing_cache",
            "dla_core", "target")  # fmt: skip
    assert resolve_options(**{k: params[k] for k in keys}) == options


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "unreadable provenance"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"tensorrt_version": "10.3"}), "incomplete or corrupt provenance"),
        (json.dumps({**make_prov().to_dict(), "format_version": 99}), "newer echogen-trt"),
    ],
)
def test_bad_provenance_files(tmp_path, content, match):
    engine = tmp_path / "m.engine"
    pv.provenance_path(engine).write_text(content)
    with pytest.raises(EngineMismatch, match=match):
        pv.read_provenance(engine)


def test_missing_provenance_explains_and_offers_force(tmp_path):
    with pytest.raises(EngineMismatch, match=r"no provenance file m\.engine\.json.*force=True"):
        pv.read_provenance(tmp_path / "m.engine")


def test_unknown_keys_are_ignored(tmp_path):
    engine = tmp_path / "m.engine"
    pv.provenance_path(engine).write_text(json.dumps({**make_prov().to_dict(), "extra": 1}))
    assert pv.read_provenance(engine) == make_prov()
