"""Helpers for the deploy tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from echogen_trt.artifacts import provenance as pv
from echogen_trt.artifacts.model_meta import ModelMeta


def engine_with_provenance(tmp_path: Path, trt_version: str = "10.13.3.9") -> Path:
    """A fake engine file with the provenance build-engine writes beside a real one."""
    meta = ModelMeta("ventricle_atrium", (1, 3), (64, 64), precision="fp16", io="uint8")
    engine = tmp_path / "fused.engine"
    engine.write_bytes(b"not a real plan")
    prov = pv.Provenance(
        tensorrt_version=trt_version, device_name="NVIDIA L4", compute_capability="8.9",
        precision="fp16", strongly_typed=True,
        profile={"mask": {"min": [2, 64, 64], "opt": [8, 64, 64], "max": [24, 64, 64]}},
        io=[
            {"name": "mask", "mode": "input", "dtype": "uint8", "shape": [-1, 64, 64]},
            {"name": "echo", "mode": "output", "dtype": "uint8", "shape": [-1, 64, 64]},
        ],
        onnx_path="fused.onnx", onnx_sha256="ab" * 32, options=pv.BuildOptions(),
        model_meta=asdict(meta),
    )  # fmt: skip
    pv.write_provenance(prov, engine)
    return engine
