"""A real `tritonserver` validates the repositories `triton-repo` writes.

The server comes from ECHOGEN_TRITONSERVER, `tritonserver` on PATH, or the `nvidia-pytriton` wheel
in a `.venv-triton` beside the checkout (`python -m venv .venv-triton && .venv-triton/bin/pip
install nvidia-pytriton`: its own venv, since it pins numpy<2). That build has only the Python
backend, so a model whose config.pbtxt is valid stops exactly at "unable to find backend library
for backend 'onnxruntime'" (or 'tensorrt', 'openvino'); a config error stops earlier, with another
message. Elsewhere the test skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from deploy_helpers import engine_with_provenance

from echogen_trt.deploy.triton_repo import RepoOptions, write_triton_repo
from fakes.onnx_models import toy_model

ROOT = Path(__file__).resolve().parents[2]


def find_tritonserver() -> Path | None:
    named = os.environ.get("ECHOGEN_TRITONSERVER")
    if named:
        return Path(named)
    on_path = shutil.which("tritonserver")
    if on_path:
        return Path(on_path)
    bundled = sorted(
        ROOT.glob(".venv-triton/lib/python*/site-packages/pytriton/tritonserver/bin/tritonserver")
    )
    return bundled[0] if bundled else None


TRITONSERVER = find_tritonserver()
pytestmark = pytest.mark.skipif(
    TRITONSERVER is None,
    reason="no tritonserver: set ECHOGEN_TRITONSERVER, put it on PATH, or install nvidia-pytriton "
    "into .venv-triton (not in CI: 370 MB, 258 s to install on a 2-core machine)",
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_tritonserver(repo: Path) -> str:
    """tritonserver on `repo` with --exit-on-error on loopback ports; its whole log."""
    assert TRITONSERVER is not None
    http, grpc = free_ports(2)
    command = [
        str(TRITONSERVER),
        f"--model-repository={repo}",
        "--exit-on-error=true",
        "--http-address=127.0.0.1",
        f"--http-port={http}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={grpc}",
        "--allow-metrics=false",
    ]
    backends = TRITONSERVER.parent.parent / "backends"
    if backends.is_dir():
        command.append(f"--backend-directory={backends}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0  # it cannot serve: no onnxruntime/tensorrt/openvino backend here
    return done.stdout + done.stderr


def test_tritonserver_accepts_every_generated_config(tmp_path: Path) -> None:
    models = [
        toy_model(tmp_path / "float_dynamic.onnx"),
        toy_model(tmp_path / "fused_uint8.onnx", "uint8"),
        toy_model(tmp_path / "static2.onnx", batch=2),
        engine_with_provenance(tmp_path),
    ]
    backends = {"float_dynamic": "onnxruntime", "fused_uint8": "onnxruntime"}
    backends |= {"static2": "onnxruntime", "fused": "tensorrt"}
    if _has_openvino():
        from echogen_trt.artifacts.onnx_file import read_meta
        from echogen_trt.artifacts.openvino_ir import load_model, save_ir

        ir = tmp_path / "ir" / "ir_model.xml"
        save_ir(load_model(models[0]), ir, read_meta(models[0]))
        models.append(ir)
        backends["ir_model"] = "openvino"
    write_triton_repo(models, tmp_path / "repo", RepoOptions(instance="cpu"))
    log = run_tritonserver(tmp_path / "repo")
    assert "Poll failed" not in log and "Error parsing" not in log, log
    for name, backend in backends.items():
        expected = f"unable to find backend library for backend '{backend}'"
        rows = [line for line in log.splitlines() if line.startswith(f"| {name} ")]
        assert rows and expected in rows[0], (name, log)


def test_a_config_error_is_caught(tmp_path: Path) -> None:
    """The control: the same check fails on a config Triton refuses."""
    write_triton_repo([toy_model(tmp_path / "toy.onnx")], tmp_path / "repo", RepoOptions())
    config = tmp_path / "repo" / "toy" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 32", "max_batch_size: 4"))
    log = run_tritonserver(tmp_path / "repo")
    assert "preferred size must be <= max batch size" in log


def _has_openvino() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True
