"""A real `echogen-trt serve` process on 127.0.0.1 (a free port), serving a tiny torch-free ONNX
model (conv + sigmoid at 16x16 with echogen metadata), stopped after the tests that use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serve_helpers import META, Server, start_server, stop_server

from fakes.onnx_models import write_plain_onnx

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plain_onnx(tmp_path_factory.mktemp("serve") / "tiny.onnx", META)


@pytest.fixture(scope="module")
def serve_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Server]]:
    """serve_factory(model, *options) -> a running Server; all are stopped after the module."""
    started: list[Server] = []

    def start(model: Path, *options: str, open_files: int | None = None) -> Server:
        log = tmp_path_factory.mktemp("serve-log") / "serve.log"
        server = start_server(model, log, *options, open_files=open_files)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)


@pytest.fixture(scope="module")
def server(serve_factory: Callable[..., Server], tiny_model: Path) -> Server:
    """One server for the module's API tests (batching up to 8 within 5 ms)."""
    return serve_factory(tiny_model)
