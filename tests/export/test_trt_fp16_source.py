"""`build-engine model.onnx` on every TensorRT (issue 23): on 11.x, which has no FP16 builder flag,
an fp16 engine from the FP32 ONNX is built from its verified `.fp16.onnx` sibling or from the FP32
file converted and PSNR-gated here; the provenance records which, and the equivalent trtexec
command line. Runs on the fake TensorRT's 8.5/10.x/11.x branches."""

from __future__ import annotations

import json
import shlex
import shutil

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from echogen_trt.artifacts import provenance as pv
from echogen_trt.artifacts.onnx_file import load_model, read_meta
from echogen_trt.cli.build_engine import build_engine as build_engine_command
from echogen_trt.errors import EngineBuildError, ExportError
from echogen_trt.export import fp16 as fp16_module
from echogen_trt.export.trt_build import build_engine
from echogen_trt.fileio import sha256_file
from echogen_trt.runtime import availability
from echogen_trt.runtime.gpu import cuda_mem
from fakes.fake_cuda import FAKE_JETSON, FakeCuda
from fakes.fake_tensorrt import fake_trt_builds, make_fake_trt


def build(onnx_path, out, version, cuda=None, fake=None, **kw):
    cuda = cuda or FakeCuda()
    trt = make_fake_trt(version, cuda=cuda, **(fake or {}))
    result = build_engine(onnx_path, out, trt=trt, cuda=cuda, **kw)
    return result, fake_trt_builds(trt)[-1]


@pytest.fixture
def lone_fp32(tiny_onnx, tmp_path):
    """The FP32 export alone in a folder (no .fp16.onnx sibling)."""
    path = tmp_path / "src" / "m.onnx"
    path.parent.mkdir()
    shutil.copyfile(tiny_onnx.path, path)
    return path


def test_trt11_converts_the_fp32_onnx_and_records_it(lone_fp32, tmp_path):
    engine = tmp_path / "out" / "m.engine"
    engine.parent.mkdir()
    result, rec = build(lone_fp32, engine, "11.0.0")
    converted = tmp_path / "out" / "m.fp16.onnx"
    assert rec.strongly_typed and rec.builder_flags == ["TF32"]  # no FP16 flag exists on 11
    assert result.provenance.layer_precisions["fp16"] > 0  # the fake ran the FP16-typed graph
    assert read_meta(load_model(converted)).precision == "fp16"
    prov = json.loads(result.provenance_path.read_text())
    assert prov["onnx_sha256"] == sha256_file(lone_fp32)  # the file the user named
    assert prov["built_from"]["kind"] == "fp16-converted"
    assert prov["built_from"]["path"] == str(converted.resolve())
    assert prov["built_from"]["sha256"] == sha256_file(converted)
    assert prov["built_from"]["psnr_db"] > 40.0
    assert pv.read_provenance(engine).built_from == prov["built_from"]
    assert f"--onnx={converted}" in prov["trtexec"] and "--fp16" not in prov["trtexec"]


def test_trt11_converts_a_fused_uint8_export(tiny_onnx_fused, tmp_path):
    """uint8 labels in, uint8 frames out: the gate's ONNX Runtime reference feeds raw labels."""
    source = tmp_path / "u8.onnx"
    shutil.copyfile(tiny_onnx_fused.path, source)
    result, rec = build(source, tmp_path / "u8.engine", "11.0.0")
    assert rec.strongly_typed and result.provenance.built_from["kind"] == "fp16-converted"
    assert result.provenance.built_from["psnr_db"] > 40.0
    assert result.provenance.io[0]["dtype"] == "uint8"


def test_trt11_takes_the_verified_sibling(tiny_onnx, tiny_onnx_fp16, tmp_path):
    result, rec = build(tiny_onnx.path, tmp_path / "m.engine", "11.0.0")
    assert rec.strongly_typed
    source = result.provenance.built_from
    assert source["kind"] == "fp16-sibling"
    assert (source["path"], source["sha256"]) == (
        str(tiny_onnx_fp16.path.resolve()),
        sha256_file(tiny_onnx_fp16.path),
    )
    assert source["psnr_db"] > 40.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.engine", "m.engine.json"]


def test_trt10_builds_the_fp32_onnx_as_given_with_the_fp16_flag(tiny_onnx, tmp_path):
    result, rec = build(tiny_onnx.path, tmp_path / "m.engine", "10.3.0")
    assert not rec.strongly_typed and rec.builder_flags == ["FP16", "TF32"]
    assert result.provenance.built_from == {
        "kind": "as-given", "path": str(tiny_onnx.path.resolve()),
        "sha256": sha256_file(tiny_onnx.path), "psnr_db": None}  # fmt: skip


def _broken_fp16(fp16_path, out):
    """The FP16 file with its first convolution's weights scaled: same metadata, wrong output."""
    model = onnx.load(str(fp16_path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    scaled = numpy_helper.to_array(init) * np.float16(-4.0)
    init.CopyFrom(numpy_helper.from_array(scaled, init.name))
    onnx.save(model, str(out))


def test_trt11_refuses_a_sibling_that_fails_the_psnr_gate(lone_fp32, tiny_onnx_fp16, tmp_path):
    sibling = lone_fp32.with_name("m.fp16.onnx")
    _broken_fp16(tiny_onnx_fp16.path, sibling)
    before = sha256_file(sibling)
    with pytest.raises(EngineBuildError, match=r"m\.fp16\.onnx \| failed the FP16 check against"):
        build(lone_fp32, tmp_path / "m.engine", "11.0.0")
    assert sha256_file(sibling) == before  # never replaced
    assert not (tmp_path / "m.engine").exists()


def test_trt11_refuses_a_sibling_of_another_model(lone_fp32, tiny_onnx, tmp_path):
    shutil.copyfile(tiny_onnx.path, lone_fp32.with_name("m.fp16.onnx"))  # an FP32 "sibling"
    with pytest.raises(EngineBuildError, match=r"the FP16 sibling of .*m\.onnx is fp32"):
        build(lone_fp32, tmp_path / "m.engine", "11.0.0")


def test_trt11_without_the_converter_names_both_ways_out(lone_fp32, tmp_path, monkeypatch):
    def missing() -> object:
        raise ExportError("onnxconverter-common | not installed. Hint: `pip install x`.")

    monkeypatch.setattr(fp16_module, "_converter", missing)
    with pytest.raises(EngineBuildError, match=r"could not be made here.*--precision both"):
        build(lone_fp32, tmp_path / "m.engine", "11.0.0")
    assert list(tmp_path.glob("m.*")) == []


@pytest.mark.parametrize(
    ("version", "precision", "present", "absent"),
    [
        ("8.5.2", "fp16", ["--fp16", "--buildOnly"], ["--stronglyTyped", "--noTF32"]),
        ("10.3.0", "fp16", ["--fp16", "--skipInference"], ["--stronglyTyped", "--noTF32"]),
        ("10.3.0", "fp32", ["--noTF32"], ["--fp16", "--stronglyTyped"]),
        ("11.0.0", "fp16", ["--skipInference"], ["--fp16", "--noTF32"]),
    ],
)
def test_trtexec_line_per_version(tiny_onnx, tmp_path, version, precision, present, absent):
    result, _ = build(tiny_onnx.path, tmp_path / "m e.engine", version, precision=precision,
                      timing_cache=tmp_path / "t.cache", workspace_mb=512)  # fmt: skip
    argv = shlex.split(result.provenance.trtexec)
    parsed = result.provenance.built_from["path"]
    assert argv[:3] == ["trtexec", f"--onnx={parsed}", f"--saveEngine={tmp_path / 'm e.engine'}"]
    assert {"--minShapes=mask:1x1x64x64", "--optShapes=mask:8x1x64x64",
            "--maxShapes=mask:32x1x64x64", "--memPoolSize=workspace:512",
            f"--timingCacheFile={tmp_path / 't.cache'}", "--profilingVerbosity=detailed",
            *present} <= set(argv)  # fmt: skip
    assert not set(absent) & set(argv)


def test_trtexec_line_strongly_typed_10x_and_dla(tiny_onnx_fp16, tiny_onnx_fixed, tmp_path):
    typed, _ = build(tiny_onnx_fp16.path, tmp_path / "t.engine", "10.3.0")
    assert "--stronglyTyped" in typed.provenance.trtexec.split()
    cuda = FakeCuda(devices=[FAKE_JETSON])
    dla, _ = build(tiny_onnx_fixed.path, tmp_path / "d.engine", "10.3.0", cuda,
                   fake={"dla_cores": 2}, target="jetson", dla_core=1)  # fmt: skip
    argv = dla.provenance.trtexec.split()
    assert {"--useDLACore=1", "--allowGPUFallback", "--memPoolSize=workspace:1024"} <= set(argv)
    assert not any(a.startswith("--minShapes") for a in argv)  # static batch: no profile


def test_cli_prints_the_source_and_the_trtexec_line(lone_fp32, tmp_path, monkeypatch):
    cuda = FakeCuda()
    trt = make_fake_trt("11.0.0", cuda=cuda)
    monkeypatch.setattr(availability, "require_tensorrt", lambda: trt)
    monkeypatch.setattr(cuda_mem, "get_cuda_api", lambda *a, **k: cuda)
    out = tmp_path / "m.engine"
    result = CliRunner().invoke(build_engine_command, [str(lone_fp32), "--out", str(out)])
    assert result.exit_code == 0, result.output
    prov = pv.read_provenance(out)
    assert f"parsed      {tmp_path / 'm.fp16.onnx'} (fp16-converted, PSNR" in result.output
    assert f"trtexec     {prov.trtexec}\n" in result.output
