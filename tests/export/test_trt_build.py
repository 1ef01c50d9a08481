"""TensorRT engine builds, against the fake `tensorrt` module of each version branch.

What runs here: our code's decisions and calls (typing, flags, profile, DLA, workspace, timing
cache, inspector check, provenance, errors). What only a GPU can confirm: that real TensorRT
agrees with the fake's reactions; see test_trt_gpu.py in tests/runtime.
"""

from __future__ import annotations

import gc
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from echogen_trt.artifacts import provenance as pv
from echogen_trt.errors import (
    BackendUnavailable,
    ConfigError,
    EngineBuildError,
    InputMismatch,
    InternalError,
)
from echogen_trt.export.trt_build import _configure, build_engine
from echogen_trt.export.trt_inspect import check_precision, layer_precisions
from echogen_trt.export.trt_presets import resolve_options
from echogen_trt.export.trt_version_policy import TypingPlan, network_flags, typing_plan
from fakes.fake_cuda import FAKE_GPU, FAKE_JETSON, FakeCuda
from fakes.fake_tensorrt import MAGIC, fake_trt_builds, fake_trt_state, make_fake_trt
from fakes.onnx_models import write_plain_onnx, write_unsupported_onnx

MIB = 1 << 20


def build(onnx_path: Path, out: Path, version: str = "10.3.0", cuda: FakeCuda | None = None,
          fake: dict | None = None, **kw: object):  # fmt: skip
    cuda = cuda or FakeCuda()
    trt = make_fake_trt(version, cuda=cuda, **(fake or {}))
    result = build_engine(onnx_path, out, trt=trt, cuda=cuda, **kw)
    return result, fake_trt_builds(trt)[-1]


@pytest.mark.parametrize(
    ("version", "fp16_onnx", "strongly_typed", "flags", "network_flag_bits"),
    [
        ("8.5.2", False, False, ["FP16", "TF32"], 0b01),  # EXPLICIT_BATCH; TF32 is the default
        ("10.3.0", False, False, ["FP16", "TF32"], 0b00),
        ("10.3.0", True, True, ["TF32"], 0b10),  # STRONGLY_TYPED, never with the FP16 flag
        ("11.0.0", True, True, ["TF32"], 0b00),  # strongly typed by default, no FP16 flag
    ],
)
def test_fp16_build_per_version(
    tiny_onnx, tiny_onnx_fp16, tiny_meta, tmp_path, version, fp16_onnx, strongly_typed, flags,
    network_flag_bits,
):  # fmt: skip
    source = tiny_onnx_fp16 if fp16_onnx else tiny_onnx
    result, rec = build(source.path, tmp_path / "m.engine", version)
    assert rec.strongly_typed is strongly_typed
    assert rec.builder_flags == flags
    assert rec.network_flags == network_flag_bits
    assert rec.verbosity == "DETAILED"  # needed by the precision check
    assert rec.pools == {"WORKSPACE": 4096 * MIB}
    assert rec.profiles == [{"mask": [(1, 1, 64, 64), (8, 1, 64, 64), (32, 1, 64, 64)]}]

    assert result.engine_path.read_bytes().startswith(MAGIC)
    prov = json.loads(result.provenance_path.read_text())
    assert result.provenance_path.name == "m.engine.json"
    assert prov["tensorrt_version"] == version
    assert (prov["device_name"], prov["compute_capability"]) == (FAKE_GPU.name, "8.9")
    assert prov["precision"] == "fp16" and prov["strongly_typed"] is strongly_typed
    assert prov["profile"]["mask"] == {
        "min": [1, 1, 64, 64], "opt": [8, 1, 64, 64], "max": [32, 1, 64, 64]}  # fmt: skip
    assert prov["onnx_sha256"] == pv.sha256_file(source.path)
    assert prov["options"]["target"] == "desktop" and prov["options"]["max_batch"] == 32
    # 10.x fuses most layers into a Myelin region and may leave the last one in FP32; 11.x
    # reports Myelin kernels with a "Datatype" key: both must read as FP16 builds
    assert prov["layer_precisions"]["fp16"] > 0
    assert [t["name"] for t in prov["io"]] == ["mask", "echo"]
    assert prov["io"][0] == {"name": "mask", "mode": "input", "dtype": "float32",
                             "shape": [-1, 1, 64, 64]}  # fmt: skip
    expected_meta = replace(tiny_meta, precision="fp16" if fp16_onnx else "fp32")
    assert pv.read_provenance(result.engine_path).meta == expected_meta


def test_fp32_engine_from_fp16_onnx_is_refused(tiny_onnx_fp16, tmp_path):
    with pytest.raises(EngineBuildError, match="is an FP16 ONNX, but an fp32 engine"):
        build(tiny_onnx_fp16.path, tmp_path / "m.engine", precision="fp32")


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0"])
def test_fp32_build_clears_tf32_and_sets_no_fp16_flag(tiny_onnx, tmp_path, version):
    """TF32 is on by default (Ampere+): an "fp32" engine must clear it to match FP32 ONNX."""
    result, rec = build(tiny_onnx.path, tmp_path / "m.engine", version, precision="fp32")
    assert rec.builder_flags == [] and not rec.strongly_typed
    assert result.provenance.precision == "fp32"
    assert "fp32" in result.provenance.layer_precisions
    assert set(result.provenance.layer_precisions) <= {"fp32", "fused"}


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0"])
def test_silent_fp32_build_is_an_error(tiny_onnx, tmp_path, version):
    """TensorRT may ignore the FP16 flag (no fast FP16, or 11.x code paths): no engine then."""
    with pytest.raises(EngineBuildError, match=r"silent FP32 build: only 0 of \d+ compute"):
        build(tiny_onnx.path, tmp_path / "m.engine", version, fake={"fp16_kernels": False})
    assert not (tmp_path / "m.engine").exists()


def test_parser_errors_list_every_node(tmp_path):
    path = write_unsupported_onnx(tmp_path / "bad.onnx")
    with pytest.raises(EngineBuildError, match="failed with 2 error") as info:
        build(path, tmp_path / "m.engine")
    message = str(info.value)
    assert "node 1 'frob1' (Frobnicate): No importer registered for op: Frobnicate" in message
    assert "node 2 'glorp2' (Glorp)" in message
    with pytest.raises(EngineBuildError, match=r"node 1: No importer registered"):
        build(path, tmp_path / "m.engine", "8.5.2")  # 8.x errors have no node_name()


def test_static_batch_onnx_builds_without_profile(tiny_onnx_fixed, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    result, rec = build(tiny_onnx_fixed.path, tmp_path / "m.engine")
    assert rec.profiles == []
    assert result.provenance.profile["mask"]["min"] == result.provenance.profile["mask"]["max"]
    assert result.provenance.profile["mask"]["max"] == [2, 1, 64, 64]
    assert "static batch of 2" in caplog.text


def test_jetson_dla_build(tiny_onnx, tmp_path):
    cuda = FakeCuda(devices=[FAKE_JETSON])
    result, rec = build(tiny_onnx.path, tmp_path / "m.engine", "8.5.2", cuda,
                        fake={"dla_cores": 2}, target="jetson", dla_core=1)  # fmt: skip
    assert (rec.device_type, rec.dla_core) == ("DLA", 1)
    assert set(rec.builder_flags) == {"FP16", "GPU_FALLBACK", "TF32"}
    assert rec.pools == {"WORKSPACE": 1024 * MIB}
    # DLA needs static shapes: a profile with min == opt == max at the preset's opt batch
    assert rec.profiles == [{"mask": [(1, 1, 64, 64)] * 3}]
    assert result.provenance.options.dla_core == 1
    assert result.provenance.platform.endswith("-jetson")


@pytest.mark.parametrize("version", ["11.0.0", "11.3.0"])
def test_dla_is_absent_in_trt_11_0_to_11_3(tiny_onnx_fp16, tmp_path, version):
    cuda = FakeCuda(devices=[FAKE_JETSON])
    with pytest.raises(EngineBuildError, match=r"has no DLA support.*11\.0-11\.3.*drop --dla"):
        build(tiny_onnx_fp16.path, tmp_path / "m.engine", version, cuda, fake={"dla_cores": 2},
              target="jetson", dla_core=0)  # fmt: skip


def test_dla_core_must_exist(tiny_onnx, tmp_path):
    with pytest.raises(EngineBuildError, match=r"core 0 asked for, this device has 0 DLA"):
        build(tiny_onnx.path, tmp_path / "m.engine", fake={"dla_cores": 0}, dla_core=0)


def test_jetson_preset_on_a_desktop_gpu_warns(tiny_onnx, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    _, rec = build(tiny_onnx.path, tmp_path / "m.engine", target="jetson")
    assert rec.profiles == [{"mask": [(1, 1, 64, 64), (1, 1, 64, 64), (8, 1, 64, 64)]}]
    assert "not a Jetson" in caplog.text


def test_timing_cache_is_saved_and_reused(tiny_onnx, tmp_path, caplog):
    cache = tmp_path / "cache" / "timing.bin"
    cuda = FakeCuda()
    _, first = build(tiny_onnx.path, tmp_path / "a.engine", cuda=cuda, timing_cache=cache)
    assert cache.is_file() and first.cache_keys_before == 0
    _, second = build(tiny_onnx.path, tmp_path / "b.engine", cuda=cuda, timing_cache=cache)
    assert second.cache_keys_before > 0 and second.cache_hits == second.cache_keys_before
    caplog.set_level(logging.WARNING)
    _, other = build(tiny_onnx.path, tmp_path / "c.engine", "8.5.2", timing_cache=cache)
    assert other.ok and other.cache_keys_before == 0
    assert "from another TensorRT or GPU" in caplog.text


def test_progress_is_logged(tiny_onnx, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="echogen_trt.export.trt_build")
    _, rec = build(tiny_onnx.path, tmp_path / "m.engine", "10.3.0")
    assert rec.progress_phases == ["Building engine", "Tactic selection"]
    assert "Building engine (2 steps)" in caplog.text
    assert "building " in caplog.text and "built " in caplog.text
    _, old = build(tiny_onnx.path, tmp_path / "m.engine", "8.5.2")  # no IProgressMonitor
    assert old.ok and old.progress_phases == []


def test_build_failure_reports_tensorrt_errors(tiny_onnx, tmp_path):
    fake = {"fail_build": "Error Code 2: OutOfMemory (requested 9 GiB)"}
    with pytest.raises(EngineBuildError, match=r"(?s)could not build.*OutOfMemory \(requested 9"):
        build(tiny_onnx.path, tmp_path / "m.engine", fake=fake)


def test_second_build_in_a_process_still_reports_tensorrt_errors(tiny_onnx, tmp_path):
    """TensorRT keeps one global logger: a new ILogger per build would never see the errors."""
    cuda = FakeCuda()
    trt = make_fake_trt("10.3.0", cuda=cuda)
    build_engine(tiny_onnx.path, tmp_path / "a.engine", trt=trt, cuda=cuda)
    fake_trt_state(trt).fail_build = "Error Code 2: OutOfMemory (requested 9 GiB)"
    with pytest.raises(EngineBuildError, match=r"(?s)could not build.*OutOfMemory \(requested 9"):
        build_engine(tiny_onnx.path, tmp_path / "b.engine", trt=trt, cuda=cuda)


def test_inspector_is_freed_before_the_engine_on_8_5(tiny_onnx, tmp_path):
    """8.5's create_engine_inspector has no keep-alive on the engine; and everything TensorRT
    frees must go while the CUDA device is bound."""
    cuda = FakeCuda()
    trt = make_fake_trt("8.5.2", cuda=cuda)
    build_engine(tiny_onnx.path, tmp_path / "a.engine", trt=trt, cuda=cuda)
    gc.collect()
    assert fake_trt_state(trt).use_after_free == []
    assert fake_trt_state(trt).freed_late == []


def test_no_gpu(tiny_onnx, tmp_path):
    with pytest.raises(BackendUnavailable, match="no CUDA GPU found"):
        build(tiny_onnx.path, tmp_path / "m.engine", cuda=FakeCuda(devices=[]))


def test_stub_only_tensorrt_is_reported_with_install_hint(tiny_onnx, tmp_path):
    """Here `import tensorrt` finds only tensorrt-stubs: that must read as "not installed"."""
    with pytest.raises(BackendUnavailable, match=r"only its type stubs.*JetPack"):
        build_engine(tiny_onnx.path, tmp_path / "m.engine", cuda=FakeCuda())


def test_too_old_tensorrt(tiny_onnx, tmp_path):
    with pytest.raises(BackendUnavailable, match=r"8\.2\.1 is too old. Expected 8\.5"):
        build(tiny_onnx.path, tmp_path / "m.engine", "8.2.1")


def test_onnx_errors(tmp_path):
    with pytest.raises(EngineBuildError, match="ONNX file not found"):
        build(tmp_path / "missing.onnx", tmp_path / "m.engine")
    plain = write_plain_onnx(tmp_path / "plain.onnx", meta=None)
    with pytest.raises(InputMismatch, match="has no echogen metadata"):
        build(plain, tmp_path / "m.engine")


def test_default_engine_path_is_beside_the_onnx(tmp_path):
    plain = write_plain_onnx(tmp_path / "plain.onnx")
    cuda = FakeCuda()
    result = build_engine(plain, trt=make_fake_trt(cuda=cuda), cuda=cuda, max_batch=2)
    assert result.engine_path == tmp_path / "plain.engine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "plain.engine", "plain.engine.json", "plain.onnx"]  # fmt: skip
    assert result.to_dict()["options"]["opt_batch"] == 2  # preset opt 8 clamped to max 2


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, dict(precision="fp16", min_batch=1, opt_batch=8, max_batch=32, workspace_mb=4096)),
        ({"target": "jetson"}, dict(opt_batch=1, max_batch=8, workspace_mb=1024)),
        ({"max_batch": 4}, dict(opt_batch=4, max_batch=4)),
        ({"opt_batch": 64}, dict(opt_batch=64, max_batch=64)),
        ({"min_batch": 2, "target": "jetson"}, dict(min_batch=2, opt_batch=2, max_batch=8)),
        ({"target": "jetson", "dla_core": 0, "max_batch": 4},
         dict(min_batch=1, opt_batch=1, max_batch=1, dla_core=0)),
        ({"timing_cache": Path("t.bin"), "workspace_mb": 64},
         dict(timing_cache="t.bin", workspace_mb=64)),
    ],
)  # fmt: skip
def test_resolve_options(kwargs, expected):
    opts = asdict(resolve_options(**kwargs))
    assert {k: opts[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_batch": 4, "opt_batch": 2}, "need 1 <= min <= opt <= max, got min=4, opt=2"),
        ({"min_batch": 0}, "need 1 <= min"),
        ({"precision": "int8"}, "--precision | unknown 'int8'"),
        ({"target": "xavier"}, "--target | unknown 'xavier'"),
        ({"workspace_mb": 0}, "--workspace-mb | must be positive"),
        ({"dla_core": -1}, "--dla-core | must be >= 0"),
        ({"dla_core": 0, "precision": "fp32"}, "DLA runs FP16"),
    ],
)
def test_resolve_options_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        resolve_options(**kwargs)


@pytest.mark.parametrize(
    ("version", "precision", "onnx_precision", "plan"),
    [
        ((8, 5), "fp16", "fp32", TypingPlan(False, True, True)),
        ((8, 5), "fp16", "fp16", TypingPlan(False, True, True)),  # no strong typing on 8.x
        ((8, 6), "fp32", "fp32", TypingPlan(False, False, True)),
        ((10, 3), "fp16", "fp32", TypingPlan(False, True, False)),
        ((10, 13), "fp16", "fp16", TypingPlan(True, False, False)),
        ((10, 3), "fp32", "fp32", TypingPlan(False, False, False)),
        ((11, 0), "fp16", "fp16", TypingPlan(True, False, False)),
        ((11, 0), "fp32", "fp32", TypingPlan(True, False, False)),
    ],
)
def test_typing_plan(version, precision, onnx_precision, plan):
    got = typing_plan(version, precision, onnx_precision, "m.onnx")
    assert got == plan
    assert not (got.strongly_typed and got.fp16_flag)  # never both


def test_rejected_profile_is_an_error():
    trt = make_fake_trt()
    builder = trt.Builder(trt.Logger())
    shapes = {"mask": {"min": [4, 1, 8, 8], "opt": [2, 1, 8, 8], "max": [8, 1, 8, 8]}}
    with pytest.raises(EngineBuildError, match="TensorRT rejected"):
        _configure(trt, builder, resolve_options(), TypingPlan(False, True, False), shapes, True)


def test_network_flags_refuse_both():
    with pytest.raises(InternalError, match="FP16 on a strongly typed"):
        network_flags(make_fake_trt(), (10, 3), TypingPlan(True, True, False))


def _layer(kind: str, *formats: dict) -> dict:
    return {"Name": kind.lower(), "LayerType": kind, "Inputs": list(formats[:1]),
            "Outputs": list(formats[1:])}  # fmt: skip


def test_layer_precisions_reads_both_inspector_schemas():
    half10, float10 = {"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}, {
        "Format/Datatype": "Row major linear FP32"}  # fmt: skip
    half11, float11 = {"DataType": "Half", "Format": "Row major linear FP16 format (kLINEAR)"}, {
        "DataType": "Float", "Format": "Row major linear FP32 format (kLINEAR)"}  # fmt: skip
    info = {"Layers": [
        _layer("Reformat", float10, half10),  # data movement: not counted
        _layer("CaskConvolution", half10, half10),
        _layer("CaskDeconvolution", half11, half11),
        _layer("PointWiseV2", float11, float11),
        _layer("Myelin", float10, float10),
        "a layer name only",
    ]}  # fmt: skip
    counts = layer_precisions(json.dumps(info))
    assert counts == {"fp16": 2, "fp32": 1, "fused": 1, "unknown": 1}


def test_layer_precisions_counts_fused_layers_and_any_key_spelling():
    """Myelin regions and kernels report tensor types; 11.x may spell the key "Datatype"."""
    half, single = {"Datatype": "Half", "Format": "Row major linear (kLINEAR)"}, {
        "Format/Datatype": "Row major linear FP32"}  # fmt: skip
    info = {"Layers": [
        {"Name": "{ForeignNode[/d1/Conv.../u7/Relu]}", "LayerType": "Myelin",
         "Inputs": [single], "Outputs": [{"Format/Datatype": "Half"}]},
        {"Name": "/d1/Conv_myl0_1", "LayerType": "kgen", "Inputs": [half], "Outputs": [half]},
        {"Name": "{ForeignNode[/a...]}", "LayerType": "Myelin", "Inputs": [single],
         "Outputs": [single]},  # FP32 boundary: says nothing about the inside
        {"name": "/float_name/Sigmoid", "layertype": "PointWiseV2", "inputs": [single],
         "outputs": [{"Name": "float_is_a_name", "datatype": "FP16"}]},
    ]}  # fmt: skip
    counts = layer_precisions(json.dumps(info))
    assert counts == {"fp16": 3, "fused": 1}
    check_precision(counts, "fp16", 0.05, "m.onnx")


def test_check_precision(caplog):
    check_precision({"fp16": 1, "fp32": 19}, "fp16", 0.05, "m.onnx")  # 5%: accepted
    with pytest.raises(EngineBuildError, match=r"only 1 of 21 compute layers run in FP16"):
        check_precision({"fp16": 1, "fp32": 20}, "fp16", 0.05, "m.onnx")
    check_precision({"fp32": 20}, "fp32", 0.05, "m.onnx")  # fp32 builds are not checked
    caplog.set_level(logging.WARNING)
    check_precision({"unknown": 5, "fused": 1}, "fp16", 0.05, "m.onnx")
    assert "could not verify the FP16 layer share" in caplog.text


def test_engine_output_may_not_overwrite_the_onnx(tiny_onnx, tmp_path):
    onnx_copy = tmp_path / "m.onnx"
    onnx_copy.write_bytes(tiny_onnx.path.read_bytes())
    with pytest.raises(ConfigError, match=r"Expected a name ending in \.engine"):
        build(onnx_copy, onnx_copy)
    assert onnx_copy.read_bytes() == tiny_onnx.path.read_bytes()
