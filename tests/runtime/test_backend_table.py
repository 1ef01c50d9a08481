"""The backend table is the one door: a record added to it (and nothing else) shows up in the
registry's messages, `doctor`, `bench --help` and bench's plan, and `/v1/model`; padding is one
rule in `Backend.infer`; "is cuda-python installed?" has one answer."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from echogen_trt import doctor
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime import MaskToEcho, availability, registry
from echogen_trt.runtime.backends.base import Backend, TensorSpec

SIZE = (16, 16)


class FakeBackend(Backend):
    """A backend that no one else knows: uint8 masks in, label * 60 out, batch fixed at 4."""

    name = "fakeinfer"
    seen: ClassVar[list[tuple[int, ...]]] = []  # the input shapes `_infer` received

    def _open(self) -> None:
        self._meta = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), SIZE, io="uint8")
        spec = TensorSpec((4, *SIZE), np.dtype(np.uint8))
        self._inputs, self._outputs = {"mask": spec}, {"echo": spec}

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        FakeBackend.seen.append(feeds["mask"].shape)
        return {"echo": feeds["mask"] * np.uint8(60)}

    def _close(self) -> None:
        pass


FAKE = registry.BackendRecord(
    name="fakeinfer",
    title="Fake Infer",
    package="fakeinfer-runtime",
    module=f"{__name__}:FakeBackend",
    suffixes=(".fake",),
    install="`pip install fakeinfer-runtime`.",
    probe=lambda: (True, "fakeinfer 1.0"),
    disables="serving .fake files",
    convert_hint="convert it with fakeinfer-convert",
    precisions=("fp32", "int8"),
)


@pytest.fixture
def fake_record(monkeypatch: pytest.MonkeyPatch) -> Iterator[registry.BackendRecord]:
    monkeypatch.setattr(registry, "RECORDS", (*registry.RECORDS, FAKE))
    yield FAKE


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    path = tmp_path / "m.fake"
    path.write_bytes(b"fake")
    return path


def test_the_registry_routes_and_words_errors_from_the_record(
    fake_record: registry.BackendRecord, fake_model: Path, tmp_path: Path
) -> None:
    assert registry.resolve_kind(fake_model) == "fakeinfer"
    assert type(registry.open_backend(fake_model)) is FakeBackend
    with pytest.raises(ConfigError, match=r"unknown suffix '\.bin'\. Expected one of .*\.fake"):
        registry.resolve_kind("m.bin")
    with pytest.raises(ConfigError, match=r"Expected one of auto, .*fakeinfer\."):
        registry.resolve_kind("m.onnx", "tflite")
    with pytest.raises(ConfigError, match=r"onnxrt backend.*Hint: convert it with fakeinfer"):
        registry.resolve_kind(fake_model, "onnxrt")
    with pytest.raises(ConfigError, match=r"not found\. Expected an .*\.xml or \.fake file"):
        registry.open_backend(tmp_path / "gone.fake")


def test_an_unavailable_record_names_its_install_hint(
    monkeypatch: pytest.MonkeyPatch, fake_model: Path
) -> None:
    down = registry.BackendRecord(**{**vars(FAKE), "probe": lambda: (False, "no fakeinfer")})
    monkeypatch.setattr(registry, "RECORDS", (*registry.RECORDS, down))
    with pytest.raises(BackendUnavailable, match=r"no fakeinfer\. Hint: `pip install fakeinfer"):
        registry.open_backend(fake_model)
    check = next(c for c in doctor.run_checks() if c.name == "fakeinfer-runtime")
    assert (check.ok, check.fix, check.disables) == (False, FAKE.install, FAKE.disables)


def test_doctor_lists_the_record(fake_record: registry.BackendRecord) -> None:
    checks = {c.name: c for c in doctor.run_checks()}
    assert checks["fakeinfer-runtime"].ok
    assert checks["fakeinfer-runtime"].detail == "fakeinfer 1.0"


def test_bench_help_and_plan_list_the_record(
    fake_record: registry.BackendRecord, fake_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from echogen_trt.bench import plan

    config = plan.BenchConfig(backends=("fakeinfer",))
    plan.check_config(config)
    targets, notes = plan.plan_targets([str(fake_model)], config)
    assert [t.backend for t in targets] == ["fakeinfer"] and notes == []
    cli_bench = importlib.import_module("echogen_trt.cli.bench")
    try:
        importlib.reload(cli_bench)  # option help is built when the command is defined
        result = CliRunner().invoke(cli_bench.bench, ["--help"])
        assert result.exit_code == 0 and "fakeinfer" in result.output
    finally:
        monkeypatch.undo()  # the table without the fake, and the command built from it
        importlib.reload(cli_bench)


def test_v1_model_describes_the_record(
    fake_record: registry.BackendRecord, fake_model: Path
) -> None:
    from echogen_trt.serve.server import serving

    with serving(fake_model, max_batch=4) as app:
        info = asyncio.run(_get_json(app, "/v1/model"))
    assert info["backend"] == "fakeinfer"
    assert info["backend_info"] == {
        "title": "Fake Infer",
        "suffixes": [".fake"],
        "precisions": ["fp32", "int8"],
    }
    assert info["labels"] == {"0": "background", "1": "LV", "2": "myocardium", "3": "LA"}


async def _get_json(app: Any, path: str) -> Any:
    """GET `path` from an ASGI app in-process, once the model is ready (/readyz)."""
    deadline = time.monotonic() + 30
    while (await _get(app, "/readyz"))[0] != 200:
        assert time.monotonic() < deadline, "the model did not open in 30 s"
        await asyncio.sleep(0.05)
    status, body = await _get(app, path)
    assert status == 200, body
    return json.loads(body)


async def _get(app: Any, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [], "http_version": "1.1", "scheme": "http",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "",
    }  # fmt: skip
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_small_batch_is_padded_once_up_to_the_fixed_batch(
    fake_record: registry.BackendRecord, fake_model: Path
) -> None:
    """Three masks on a model whose batch is fixed at 4: the backend sees one batch of 4 (the
    padding rule of Backend.infer), the caller gets 3 frames."""
    FakeBackend.seen.clear()
    masks = np.stack([np.full(SIZE, i % 4, np.uint8) for i in range(3)])
    with MaskToEcho(fake_model, batch_size=8) as gen:
        frames = gen.generate(masks)
        assert gen.backend.infer({"mask": masks})["echo"].shape == (3, *SIZE)
    assert FakeBackend.seen == [(4, *SIZE), (4, *SIZE)]
    np.testing.assert_array_equal(frames, masks * 60)


def test_cuda_python_before_12_6_counts_as_cuda_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda-python 12.0-12.5 has `cuda.cudart` but no `cuda.bindings`: the registry, doctor and
    the CUDA layer must all see it (doctor used to say "neither cuda-python nor pycuda")."""
    monkeypatch.setattr(availability, "has_module", lambda name: name == "cuda.cudart")
    assert availability.cuda_bindings() == ["cuda-python"]
    check = next(c for c in doctor.run_checks() if c.name == "cuda (python)")
    assert check.ok and check.detail == "cuda-python"
