"""`--backend auto` where more than one backend can serve a file: measured here, then cached.

Which CPU backend is faster depends on the CPU: OpenVINO FP32 ran the reference model at
0.89-0.96x ONNX Runtime's speed on an AVX2-only EPYC and at 1.08-1.16x on an AVX-512 EPYC. So a
rule cannot decide; a short measurement on this machine does (every candidate opened, one
warm-up call each, then calls alternating between the candidates until `seconds` have passed, so
a change in the machine's load hits all of them alike; the lowest median wins). Like TensorRT's
timing cache, the decision is kept in `<cache>/backend-choice.json` under a key of the model's
SHA-256, the machine (CPU model, flags, usable cores) and every candidate's version, so a new
model, another machine or an upgraded backend measures again. A GPU provider in ONNX Runtime
is not raced against CPUs: it serves the file as the suffix rule says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from echogen_trt.errors import EchogenError
from echogen_trt.fileio import default_cache_dir, sha256_file, write_text_atomic
from echogen_trt.runtime.cpu import cpu_flags, parse_cpuinfo, usable_cores

log = logging.getLogger(__name__)

CACHE_FILE = "backend-choice.json"
MEASURE_SECONDS = 2.0
MIN_CALLS = 3
MAX_ENTRIES = 200  # oldest decisions dropped beyond this
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")  # as availability lists


class Registry(Protocol):
    """What this module asks of runtime.registry, which passes itself in (it imports this
    module, not the reverse, and its table is the only place that names backends)."""

    def readers_of(self, model_path: str | os.PathLike[str]) -> tuple[str, ...]: ...

    def backend_availability(self, kind: str) -> tuple[bool, str]: ...

    def backend_class(self, kind: str) -> Any: ...


@dataclass
class Choice:
    """The backend for a model and what it rests on: `ms` = median ms per batch-1 call of each
    candidate (empty when nothing was measured), `why` in words."""

    kind: str
    why: str
    ms: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    key: dict[str, Any] = field(default_factory=dict)
    measured_at: str = ""
    load_avg: list[float] = field(default_factory=list)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_id() -> dict[str, Any]:
    """What makes one machine's measurement invalid on another."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    flags = " ".join(sorted(cpu_flags()))
    return {
        "cpu": parse_cpuinfo(text)["model"] or platform.processor(),
        "arch": platform.machine(),
        "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16],
        "usable_cores": usable_cores(),
    }


def choice_key(model_path: Path, versions: dict[str, str]) -> dict[str, Any]:
    """The cache key: model bytes, machine, candidate versions."""
    return {"model_sha256": sha256_file(model_path), "machine": machine_id(), "versions": versions}


def _key_id(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _cache_path(cache_dir: Path | None) -> Path:
    return (cache_dir or default_cache_dir()) / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or damaged: measure again, rewrite it
        return {}
    return data if isinstance(data, dict) else {}


def cached_choice(
    model_path: Path, versions: dict[str, str], cache_dir: Path | None = None
) -> Choice | None:
    """The stored decision for exactly this model, machine and versions, else None."""
    entry = _read_cache(_cache_path(cache_dir)).get(_key_id(choice_key(model_path, versions)))
    if not isinstance(entry, dict):
        return None
    try:
        return Choice(**{**entry, "cached": True})
    except TypeError:  # written by another version of this module
        return None


def store_choice(choice: Choice, cache_dir: Path | None = None) -> None:
    """Add `choice` to the cache file (atomically; the oldest entries beyond MAX_ENTRIES go)."""
    path = _cache_path(cache_dir)
    data = _read_cache(path)
    data[_key_id(choice.key)] = {**choice.to_dict(), "cached": False}
    keep = sorted(data.items(), key=lambda kv: str(kv[1].get("measured_at", "")))[-MAX_ENTRIES:]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(dict(keep), indent=1, sort_keys=True))


def _feeds(backend: Any) -> dict[str, np.ndarray]:
    """One batch-1 input of the backend's shape and type (uniform noise: no zero fast paths)."""
    rng = np.random.default_rng(0)
    out = {}
    for name, spec in backend.inputs.items():
        shape = tuple(1 if d is None else d for d in spec.shape)
        out[name] = rng.uniform(-1, 1, shape).astype(spec.dtype)
    return out


def alternate_calls(
    opened: dict[str, tuple[Any, dict[str, np.ndarray]]], seconds: float, min_calls: int
) -> dict[str, list[float]]:
    """ms per call of each opened (backend, feeds), one call of each in turn until `seconds`
    have passed and each has `min_calls`: interleaved, so a load change hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in opened}
    stop = time.perf_counter() + seconds
    while opened and (time.perf_counter() < stop or min(map(len, times.values())) < min_calls):
        for name, (backend, feeds) in opened.items():
            t0 = time.perf_counter()
            backend.infer(feeds, check=False)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def race(
    model_path: Path, kinds: tuple[str, ...], seconds: float, registry: Registry
) -> dict[str, list[float]]:
    """ms per call of each backend in `kinds`, calls alternating until `seconds` have passed
    (and each has MIN_CALLS). A backend that fails to open or run drops out."""
    opened = {}
    try:
        for kind in kinds:
            try:
                backend = registry.backend_class(kind)(str(model_path)).open()
                feeds = _feeds(backend)
                backend.infer(feeds)  # warm-up, validated
            except EchogenError as err:
                log.warning("backend auto | %s cannot serve %s: %s", kind, model_path, err)
                continue
            opened[kind] = (backend, feeds)
        return alternate_calls(opened, seconds, MIN_CALLS)
    finally:
        for backend, _ in opened.values():
            backend.close()


def measure_choice(
    model_path: Path,
    kinds: tuple[str, ...],
    versions: dict[str, str],
    seconds: float,
    registry: Registry,
) -> Choice:
    """Race `kinds` on `model_path` and name the fastest (by median ms per call)."""
    times = race(model_path, kinds, seconds, registry)
    ms = {kind: float(np.median(t)) for kind, t in times.items() if t}
    if not ms:
        return Choice(kinds[0], "no candidate could run the model; the suffix rule decides")
    best = min(ms, key=lambda k: ms[k])
    others = ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items() if k != best)
    why = f"measured: {best} {ms[best]:.1f} ms per batch-1 call" + (f" vs {others}" * bool(others))
    return Choice(
        best,
        why,
        ms,
        {k: len(t) for k, t in times.items()},
        choice_key(model_path, versions),
        dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
    )


def candidates(model_path: Path, registry: Registry) -> tuple[tuple[str, ...], dict[str, str], str]:
    """(usable candidate kinds, their versions, why no race) for a model file: every backend
    the registry says reads it (ONNX Runtime and OpenVINO for .onnx)."""
    kinds = registry.readers_of(model_path)
    usable = {k: registry.backend_availability(k) for k in kinds}
    ok = tuple(k for k in kinds if usable[k][0])
    versions = {k: usable[k][1] for k in ok}
    if len(ok) < 2:
        return ok, versions, "only one backend installed can serve this file"
    gpu = [k for k in ok if any(p in versions[k] for p in GPU_PROVIDERS)]
    if gpu:
        return (gpu[0],), versions, f"{gpu[0]} has a GPU provider: not raced against CPUs"
    return ok, versions, ""


def choose_backend(
    model_path: str | os.PathLike[str],
    registry: Registry,
    *,
    cache_dir: Path | None = None,
    seconds: float = MEASURE_SECONDS,
    measure: bool = True,
) -> Choice | None:
    """The measured (or cached) choice for `model_path`, or None where there is nothing to
    choose (one candidate; the suffix rule applies). With `measure=False` only the cache is
    read (doctor)."""
    path = Path(model_path)
    kinds, versions, why_not = candidates(path, registry)
    if why_not:
        log.debug("backend auto | %s: %s", path, why_not)
        return None
    found = cached_choice(path, versions, cache_dir)
    if found is not None or not measure:
        return found
    choice = measure_choice(path, kinds, versions, seconds, registry)
    log.info("backend auto | %s: %s", path.name, choice.why)
    if choice.key:
        store_choice(choice, cache_dir)
    return choice


def auto_kind(model_path: str | os.PathLike[str], registry: Registry) -> str | None:
    """The kind `--backend auto` runs `model_path` on, or None for the suffix rule (the
    registry's one call into this module)."""
    path = Path(model_path)
    choice = choose_backend(path, registry) if path.is_file() else None
    return choice.kind if choice else None
