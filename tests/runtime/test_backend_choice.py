"""`--backend auto`: measured once per (model, machine, backend versions), then read from the
cache; the registry opens whatever the decision says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest

from echogen_trt.runtime import backend_choice, registry

pytest.importorskip("openvino", reason="openvino not installed (extra [openvino])")


def choose(
    model: Path, cache_dir: Path, seconds: float = 0.0, measure: bool = True
) -> backend_choice.Choice | None:
    """choose_backend with the registry's functions, looked up now (tests patch them)."""
    return backend_choice.choose_backend(
        model, registry, cache_dir=cache_dir, seconds=seconds, measure=measure,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def races(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The real race, with every call recorded (a race = a measurement, not a cache hit)."""
    seen: list[Path] = []
    real = backend_choice.race

    def spy(model_path: Path, kinds: tuple[str, ...], seconds: float, make: object) -> object:
        seen.append(model_path)
        return real(model_path, kinds, seconds, make)  # type: ignore[arg-type]  # the spy's own

    monkeypatch.setattr(backend_choice, "race", spy)
    return seen


def test_choice_is_measured_once_then_cached(
    models: SimpleNamespace, tmp_path: Path, races: list[Path]
) -> None:
    model = Path(shutil.copy(models.onnx, tmp_path / "m.onnx"))
    first = choose(model, cache_dir=tmp_path, seconds=0.0)
    assert first is not None and not first.cached and set(first.ms) == {"onnxrt", "openvino"}
    assert first.kind == min(first.ms, key=lambda k: first.ms[k])
    assert all(n >= backend_choice.MIN_CALLS for n in first.calls.values())
    again = choose(model, cache_dir=tmp_path, seconds=0.0)
    assert again is not None and again.cached and again.kind == first.kind and again.ms == first.ms
    assert len(races) == 1


def test_cache_invalidates_when_the_model_changes(
    models: SimpleNamespace, tmp_path: Path, races: list[Path]
) -> None:
    model = Path(shutil.copy(models.onnx, tmp_path / "m.onnx"))
    choose(model, cache_dir=tmp_path, seconds=0.0)
    proto = onnx.load(str(model))
    proto.doc_string = "retrained"  # other bytes, same name
    onnx.save(proto, str(model))
    assert choose(model, cache_dir=tmp_path, measure=False) is None
    changed = choose(model, cache_dir=tmp_path, seconds=0.0)
    assert changed is not None and not changed.cached and len(races) == 2


def test_cache_invalidates_when_a_backend_version_changes(
    models: SimpleNamespace, tmp_path: Path, races: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Path(shutil.copy(models.onnx, tmp_path / "m.onnx"))
    choose(model, cache_dir=tmp_path, seconds=0.0)
    real = registry.backend_availability

    def upgraded(kind: str) -> tuple[bool, str]:
        ok, why = real(kind)
        return ok, why.replace("openvino ", "openvino 99.0 was ") if kind == "openvino" else why

    monkeypatch.setattr(registry, "backend_availability", upgraded)
    assert choose(model, cache_dir=tmp_path, measure=False) is None
    choose(model, cache_dir=tmp_path, seconds=0.0)
    assert len(races) == 2


@pytest.mark.parametrize("kind", ["openvino", "onnxrt"])
def test_open_backend_auto_follows_the_cached_decision(
    models: SimpleNamespace, tmp_path: Path, races: list[Path], monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("ECHOGEN_CACHE", str(tmp_path))
    model = Path(shutil.copy(models.onnx, tmp_path / "m.onnx"))
    _, versions, _ = backend_choice.candidates(model, registry)  # type: ignore[arg-type]
    key = backend_choice.choice_key(model, versions)
    backend_choice.store_choice(backend_choice.Choice(kind, "seeded", key=key, measured_at="x"))
    with registry.open_backend(model, "auto") as backend:
        assert backend.name == kind
    with registry.open_backend(model) as backend:  # no --backend: the suffix rule, no race
        assert backend.name == "onnxrt"
    assert races == []


def test_nothing_to_choose_with_one_backend(
    models: SimpleNamespace, tmp_path: Path, races: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = registry.backend_availability
    monkeypatch.setattr(
        registry,
        "backend_availability",
        lambda kind: (False, "not installed") if kind == "openvino" else real(kind),
    )
    assert choose(models.onnx, cache_dir=tmp_path) is None
    assert races == [] and not (tmp_path / backend_choice.CACHE_FILE).exists()


def test_doctor_shows_the_cached_decision(
    models: SimpleNamespace, tmp_path: Path, races: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from echogen_trt.cli import cli

    monkeypatch.setenv("ECHOGEN_CACHE", str(tmp_path))
    model = Path(shutil.copy(models.onnx, tmp_path / "m.onnx"))
    before = CliRunner().invoke(cli, ["doctor", "--model", str(model)])
    assert (
        before.exit_code == 0 and "--backend auto: -: not measured on this machine" in before.output
    )
    _, versions, _ = backend_choice.candidates(model, registry)  # type: ignore[arg-type]
    seeded = backend_choice.Choice(
        "openvino", "measured: openvino 1.0 ms", {"openvino": 1.0, "onnxrt": 2.0},
        key=backend_choice.choice_key(model, versions), measured_at="2026-12-02T14:00:00+00:00",
    )  # fmt: skip
    backend_choice.store_choice(seeded)
    after = CliRunner().invoke(cli, ["doctor", "--model", str(model), "--json"])
    auto = json.loads(after.output)["backend"]["auto"]
    assert auto["decision"] == "openvino" and auto["ms"] == {"openvino": 1.0, "onnxrt": 2.0}
    assert auto["cached"] and races == []  # doctor reads the cache, never measures
