"""TensorRTBackend end to end on the fake TensorRT and fake CUDA: engines built by
`build_engine` from real exported generators, run through pinned/device buffers and compared
with ONNX Runtime on the same ONNX file (the fake's "kernel" is ONNX Runtime on the bytes found
at the bound device addresses, so every copy, offset and shape must be right to match).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
from runtime_helpers import SIZE, labels_mask

from echogen_trt.artifacts import provenance as pv
from echogen_trt.errors import (
    BackendUnavailable,
    ConfigError,
    EngineMismatch,
    InputMismatch,
    InternalError,
)
from echogen_trt.export.trt_build import build_engine
from echogen_trt.runtime.backends.tensorrt import TensorRTBackend
from echogen_trt.runtime.gpu.cuda_mem import CudaError, DeviceInfo
from fakes.fake_cuda import FAKE_GPU, FAKE_JETSON, FakeCuda
from fakes.fake_tensorrt import fake_trt_state, make_fake_trt


def make_engine(onnx_path, tmp_path, version="10.3.0", cuda=None, dla_cores=0, **kw):
    cuda = cuda or FakeCuda()
    trt = make_fake_trt(version, cuda=cuda, dla_cores=dla_cores)
    kw.setdefault("max_batch", 4)
    result = build_engine(onnx_path, tmp_path / "m.engine", trt=trt, cuda=cuda, **kw)
    return str(result.engine_path), trt, cuda


def float_masks(n: int, seed: int = 0) -> np.ndarray:
    return np.stack([labels_mask((SIZE, SIZE), seed + i) for i in range(n)])[:, None].astype(
        np.float32
    )


def ort_run(onnx_path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def fp16_onnx(models, tmp_path_factory):
    from echogen_trt.export.fp16 import convert_file_fp16

    return convert_file_fp16(models.onnx, tmp_path_factory.mktemp("fp16") / "m.fp16.onnx").path


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0", "11.0.0"])
def test_parity_with_onnxruntime(models, fp16_onnx, tmp_path, version):
    source = fp16_onnx if version.startswith("11") else models.onnx
    engine, trt, cuda = make_engine(source, tmp_path, version)
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        assert backend.max_batch == 4
        assert backend.inputs["mask"].shape == (None, 1, SIZE, SIZE)
        assert backend.inputs["mask"].dtype == np.float32
        assert backend.outputs["echo"].shape == (None, 1, SIZE, SIZE)
        expected_meta = replace(models.meta, precision="fp16" if source == fp16_onnx else "fp32")
        assert backend.meta == expected_meta
        for n in (3, 1, 4):  # dynamic batch within the profile, buffers reused
            x = float_masks(n, seed=n)
            out = backend.infer({"mask": x})["echo"]
            assert out.shape == (n, 1, SIZE, SIZE) and out.dtype == np.float32
            np.testing.assert_array_equal(out, ort_run(source, x))
        assert set(backend.timings()) == {"h2d", "compute", "d2h"}
        assert all(v >= 0 for v in backend.timings().values())
    assert cuda.pageable_copies == 0  # every copy from pinned memory
    assert cuda.syncs == 3  # one synchronisation per call
    assert cuda.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0}


def test_fused_uint8_io(models, tmp_path):
    engine, trt, cuda = make_engine(models.fused, tmp_path)
    masks = np.stack([labels_mask((SIZE, SIZE), i) for i in range(2)])
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        assert backend.inputs["mask"].dtype == np.uint8 and backend.meta.io == "uint8"
        out = backend.infer({"mask": masks})["echo"]
    assert out.dtype == np.uint8 and out.shape == (2, SIZE, SIZE)
    np.testing.assert_array_equal(out, ort_run(models.fused, masks))


def test_batch_limits(models, tmp_path):
    engine, trt, cuda = make_engine(models.onnx, tmp_path)
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        with pytest.raises(InputMismatch, match="batch 5 exceeds the model's maximum 4"):
            backend.infer({"mask": float_masks(5)})
        with pytest.raises(InputMismatch, match=r"outside the engine's profile \(batch 1..4\)"):
            backend.infer({"mask": float_masks(5)}, check=False)
        with pytest.raises(InputMismatch, match="dtype float64"):
            backend.infer({"mask": float_masks(1).astype(np.float64)})


def test_static_batch_engine_pads_smaller_batches(models, tmp_path):
    engine, trt, cuda = make_engine(models.static2, tmp_path, max_batch=None)
    x = float_masks(1, seed=7)
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        assert backend.max_batch == 2
        out = backend.infer({"mask": x})["echo"]
        staged = backend._session.inputs[0].host.reshape(2, 1, SIZE, SIZE)
        assert not staged[1].any()  # the pad row is zeros, not the buffer's garbage
    assert out.shape == (1, 1, SIZE, SIZE)
    np.testing.assert_array_equal(out, ort_run(models.onnx, x))  # same weights, dynamic


def test_dla_engine_runs_at_its_static_batch(models, tmp_path):
    cuda = FakeCuda(devices=[FAKE_JETSON])
    engine, trt, cuda = make_engine(models.onnx, tmp_path, "8.5.2", cuda, dla_cores=1,
                                    target="jetson", dla_core=0, max_batch=None)  # fmt: skip
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        assert backend.max_batch == 1
        x = float_masks(1)
        np.testing.assert_array_equal(backend.infer({"mask": x})["echo"], ort_run(models.onnx, x))
        with pytest.raises(InputMismatch, match="exceeds the model's maximum 1"):
            backend.infer({"mask": float_masks(2)})


def test_dla_engine_is_loaded_on_the_core_it_was_built_for(models, tmp_path):
    """IRuntime.DLA_core picks the core a deserialized engine runs on; the provenance has it."""
    cuda = FakeCuda(devices=[FAKE_JETSON])
    engine, trt, cuda = make_engine(models.onnx, tmp_path, "8.5.2", cuda, dla_cores=2,
                                    target="jetson", dla_core=1, max_batch=None)  # fmt: skip
    with TensorRTBackend(engine, trt=trt, cuda=cuda):
        pass
    assert fake_trt_state(trt).dla_loads[-1] == 1


def test_close_frees_tensorrt_objects_inside_the_cuda_binding(models, tmp_path):
    """Context, engine and runtime free device memory: in their CUDA context (pycuda, device 1)."""
    engine, trt, cuda = make_engine(models.onnx, tmp_path, "8.5.2")
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        backend.infer({"mask": float_masks(1)})
    gc.collect()
    assert fake_trt_state(trt).freed_late == []


def test_second_backend_reports_tensorrt_errors(models, tmp_path):
    """One global logger in TensorRT: the second backend's deserialization error must show."""
    engine, trt, cuda = make_engine(models.onnx, tmp_path, "8.5.2")
    first = TensorRTBackend(engine, trt=trt, cuda=cuda).open()
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"not an engine")
    with pytest.raises(EngineMismatch, match="magicTagRead"):
        TensorRTBackend(str(bad), trt=trt, cuda=cuda, force=True).open()
    first.close()


def test_outputs_are_copies_unless_reuse_outputs(models, tmp_path):
    engine, trt, cuda = make_engine(models.onnx, tmp_path)
    with TensorRTBackend(engine, trt=trt, cuda=cuda) as backend:
        first = backend.infer({"mask": float_masks(2)})["echo"]
        assert not any(np.shares_memory(first, p) for p in cuda.pinned)
        kept = first.copy()
        view = backend.infer({"mask": float_masks(2, seed=5)}, reuse_outputs=True)["echo"]
        assert any(np.shares_memory(view, p) for p in cuda.pinned)
        np.testing.assert_array_equal(first, kept)  # the copy survived the next call


def other_machine(sm: tuple[int, int], name: str = "NVIDIA RTX A2000") -> FakeCuda:
    return FakeCuda(devices=[DeviceInfo(0, name, sm, 12_000, integrated=False)])


def test_engine_from_another_gpu_is_refused_with_the_rebuild_command(models, tmp_path):
    engine, _, _ = make_engine(models.onnx, tmp_path)
    cuda = other_machine((8, 6))
    backend = TensorRTBackend(engine, trt=make_fake_trt("10.13.0", cuda=cuda), cuda=cuda)
    with pytest.raises(EngineMismatch) as info:
        backend.open()
    message = str(info.value)
    assert "TensorRT: engine built with 10.3.0, this machine has 10.13.0" in message
    assert "compute capability 8.9 (NVIDIA FakeGPU 4090), this GPU is 8.6" in message
    assert f"echogen-trt build-engine {models.onnx} --out {engine} --precision fp16" in message
    assert not backend.is_open and cuda.live() == {"device": 0, "pinned": 0, "streams": 0,
                                                   "events": 0}  # fmt: skip


def test_force_skips_the_check_but_tensorrt_still_refuses_another_architecture(models, tmp_path):
    engine, _, _ = make_engine(models.onnx, tmp_path)
    cuda = other_machine((8, 6))
    backend = TensorRTBackend(engine, force=True, trt=make_fake_trt(cuda=cuda), cuda=cuda)
    with pytest.raises(EngineMismatch, match=r"could not deserialize the engine \(The engine "
                       "plan file is generated on an incompatible device"):  # fmt: skip
        backend.open()
    assert cuda.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0}


def test_force_loads_same_architecture_other_model(models, tmp_path, caplog):
    engine, _, _ = make_engine(models.onnx, tmp_path)
    cuda = other_machine(FAKE_GPU.compute_capability, "NVIDIA GeForce RTX 4080")
    caplog.set_level(logging.WARNING)
    with TensorRTBackend(engine, force=True, trt=make_fake_trt(cuda=cuda), cuda=cuda) as b:
        x = float_masks(2)
        np.testing.assert_array_equal(b.infer({"mask": x})["echo"], ort_run(models.onnx, x))
    assert "despite (force): GPU model" in caplog.text


def test_missing_provenance(models, tmp_path, caplog):
    engine, trt, cuda = make_engine(models.onnx, tmp_path)
    pv.provenance_path(engine).unlink()
    with pytest.raises(EngineMismatch, match="no provenance file"):
        TensorRTBackend(engine, trt=trt, cuda=cuda).open()
    caplog.set_level(logging.WARNING)
    with TensorRTBackend(engine, force=True, trt=trt, cuda=cuda) as backend:
        assert backend.provenance is None
        meta = backend.meta
        assert (meta.experiment, meta.io, meta.input_size) == ("unknown", "float", (SIZE, SIZE))
        assert backend.infer({"mask": float_masks(1)})["echo"].shape == (1, 1, SIZE, SIZE)
    assert "loading" in caplog.text and "unchecked (force)" in caplog.text


class FailingCuda(FakeCuda):
    """cudaMalloc runs out of memory on the second allocation."""

    def malloc(self, nbytes: int) -> int:
        if self.memory:
            raise CudaError("cudaMalloc | CUDA call failed: cudaErrorMemoryAllocation (2).")
        return super().malloc(nbytes)


def test_failed_open_frees_what_it_allocated(models, tmp_path):
    engine, _, _ = make_engine(models.onnx, tmp_path)
    cuda = FailingCuda()
    backend = TensorRTBackend(engine, trt=make_fake_trt(cuda=cuda), cuda=cuda)
    with pytest.raises(CudaError, match="cudaErrorMemoryAllocation"):
        backend.open()
    assert not backend.is_open
    assert cuda.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0}


def test_lifecycle(models, tmp_path):
    engine, trt, cuda = make_engine(models.onnx, tmp_path)
    backend = TensorRTBackend(engine, device=0, trt=trt, cuda=cuda)
    with pytest.raises(InternalError, match=r"infer\(\) before open"):
        backend.infer({"mask": float_masks(1)})
    for _ in range(2):  # reopen after close
        backend.open()
        assert backend.infer({"mask": float_masks(1)})["echo"].shape == (1, 1, SIZE, SIZE)
        backend.close()
        backend.close()  # idempotent
        assert cuda.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0}
    assert set(cuda.bound) == {0}


def test_environment_errors(models, tmp_path):
    engine, trt, _ = make_engine(models.onnx, tmp_path)
    with pytest.raises(ConfigError, match="CUDA-graph replay is not implemented"):
        TensorRTBackend(engine, cuda_graph=True)
    with pytest.raises(BackendUnavailable, match="no CUDA GPU found"):
        TensorRTBackend(engine, trt=trt, cuda=FakeCuda(devices=[])).open()
    with pytest.raises(BackendUnavailable, match="device 1 does not exist"):
        TensorRTBackend(engine, device=1, trt=trt, cuda=FakeCuda()).open()
    with pytest.raises(BackendUnavailable, match=r"only its type stubs.*JetPack"):
        TensorRTBackend(engine, cuda=FakeCuda()).open()  # the real (stub-only) tensorrt
