"""Helpers for the serve tests: a `serve` process on a free port, HTTP by urllib, mask codecs."""

from __future__ import annotations

import io
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta

META = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (16, 16))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return request(self.url + path)

    def post(
        self, path: str, body: bytes, content_type: str = "image/png"
    ) -> tuple[int, dict[str, str], bytes]:
        return request(self.url + path, body, {"Content-Type": content_type})

    def json(self, path: str) -> dict[str, object]:
        status, _, body = self.get(path)
        assert status == 200, body
        return dict(json.loads(body))


def request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP request; 4xx/5xx are returned, not raised."""
    req = urllib.request.Request(
        url, data=body, headers=headers or {}, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def start_server(model: Path, log: Path, *options: str, open_files: int | None = None) -> Server:
    """`python -m echogen_trt serve` on a free port; waits until /readyz answers 200.
    `open_files`: the server's open-file limit (as `ulimit -n`)."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "echogen_trt", "serve", "--model", str(model)]
    command += ["--port", str(port), *options]
    handle = log.open("wb")

    def limit_files() -> None:
        if open_files is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

    process = subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, env=env, preexec_fn=limit_files
    )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if server.get("/readyz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise AssertionError(f"serve did not become ready:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def png(mask: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", mask)
    assert ok
    return bytes(data.tobytes())


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def decode(body: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, body[:200]
    return np.asarray(image)


def blocks(shape: tuple[int, int] = (40, 30), seed: int = 0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    h, w = shape
    mask[h // 6 : h // 2, w // 5 + seed % 4 : w // 2 + seed % 7] = 1
    mask[h // 6 : h // 2, w // 2 + seed % 7 : w // 2 + 3 + seed % 7] = 2
    mask[h // 2 + 2 : h - 3, w // 4 : w // 2 + seed % 5] = 3
    return mask
