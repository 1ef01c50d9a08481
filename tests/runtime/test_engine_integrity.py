"""Engine integrity (issue 16): the provenance records the engine's sha256 at build time and the
loader checks it, so a swapped or modified engine is refused; given the source ONNX, the loader
checks that too. Runs on the fake TensorRT and fake CUDA."""

from __future__ import annotations

import logging
import shutil

import pytest

from echogen_trt.artifacts import provenance as pv
from echogen_trt.errors import EngineMismatch
from echogen_trt.export.trt_build import build_engine
from echogen_trt.fileio import sha256_file
from echogen_trt.runtime.backends.tensorrt import TensorRTBackend
from fakes.fake_cuda import FakeCuda
from fakes.fake_tensorrt import make_fake_trt


def built(onnx_path, folder):
    cuda = FakeCuda()
    trt = make_fake_trt("10.3.0", cuda=cuda)
    result = build_engine(onnx_path, folder / "m.engine", trt=trt, cuda=cuda, max_batch=4)
    return result.engine_path, trt, cuda


def test_the_build_records_the_engines_sha256(models, tmp_path):
    engine, _, _ = built(models.onnx, tmp_path)
    assert pv.read_provenance(engine).engine_sha256 == sha256_file(engine)


def test_a_swapped_engine_is_refused_and_force_only_warns(models, tmp_path, caplog):
    engine, trt, cuda = built(models.onnx, tmp_path)
    other, _, _ = built(models.static2, tmp_path / "other")
    shutil.copyfile(other, engine)  # same name, same provenance file, another engine
    with pytest.raises(EngineMismatch) as info:
        TensorRTBackend(str(engine), trt=trt, cuda=cuda).open()
    message = str(info.value)
    assert message.startswith(f"{engine} | does not match what was built")
    assert (
        f"engine: {engine} has sha256 {sha256_file(other)[:16]}..., the build recorded" in message
    )
    assert "(the file was replaced or modified)" in message
    caplog.set_level(logging.WARNING)
    with TensorRTBackend(str(engine), force=True, trt=trt, cuda=cuda) as backend:
        assert backend.max_batch == 2  # the swapped-in engine, loaded because forced
    assert "despite (force): engine:" in caplog.text


def test_the_source_onnx_is_checked_when_given(models, tmp_path):
    engine, trt, cuda = built(models.onnx, tmp_path)
    with TensorRTBackend(str(engine), onnx=str(models.onnx), trt=trt, cuda=cuda) as backend:
        assert backend.provenance is not None
    with pytest.raises(EngineMismatch, match=r"ONNX: .*changed since the engine was built"):
        TensorRTBackend(str(engine), onnx=str(models.fused), trt=trt, cuda=cuda).open()
    with pytest.raises(EngineMismatch, match=r"onnx .*gone\.onnx \| not found"):
        TensorRTBackend(str(engine), onnx=str(tmp_path / "gone.onnx"), trt=trt, cuda=cuda).open()
