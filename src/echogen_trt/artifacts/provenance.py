"""What an engine was built from and for, kept beside it as `<engine>.json`.

A TensorRT engine is tied to the TensorRT version and the GPU that built it (and a Jetson engine
must be built on the Jetson). Loading one elsewhere fails deep inside TensorRT, or works slowly.
So the builder records its provenance, and the loader refuses a mismatch up front with one
message that lists every difference and the exact command that rebuilds the engine here.

The provenance also records the engine's own sha256 (written beside it right after the engine),
checked at load: a swapped or modified engine file is refused, and so is one whose source ONNX
changed, when the loader is given that ONNX file. Hashing is cheap next to deserializing: an
89 MiB file took 0.21 s (`fileio.sha256_file`, warm page cache, 2-core EPYC VM).
Torch-free and TensorRT-free.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NoReturn

from echogen_trt.artifacts.model_meta import META_PREFIX, ModelMeta
from echogen_trt.artifacts.precision import ENGINE_DEFAULT
from echogen_trt.errors import EngineMismatch, InputMismatch
from echogen_trt.fileio import sha256_file as sha256_file
from echogen_trt.fileio import write_bytes_atomic

FORMAT_VERSION = 1
SUFFIX = ".json"


@dataclass(frozen=True)
class BuildOptions:
    """The resolved options of one build (presets applied): enough to repeat it."""

    precision: str = ENGINE_DEFAULT
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mb: int = 4096
    timing_cache: str | None = None
    dla_core: int | None = None
    target: str = "desktop"

    def cli_args(self) -> list[str]:
        """These options as `echogen-trt build-engine` flags."""
        args = [
            f"--precision {self.precision}",
            f"--min-batch {self.min_batch}",
            f"--opt-batch {self.opt_batch}",
            f"--max-batch {self.max_batch}",
            f"--workspace-mb {self.workspace_mb}",
            f"--target {self.target}",
        ]
        if self.timing_cache:
            args.append(f"--timing-cache {shlex.quote(self.timing_cache)}")
        if self.dla_core is not None:
            args.append(f"--dla-core {self.dla_core}")
        return args


@dataclass(frozen=True)
class Environment:
    """The machine an engine is built on or loaded on: what the engine is tied to."""

    tensorrt_version: str
    device_name: str
    compute_capability: str  # "8.6"


@dataclass(frozen=True)
class Provenance:
    """Everything recorded beside an engine. `model_meta` is the source ONNX's ModelMeta."""

    tensorrt_version: str
    device_name: str
    compute_capability: str
    precision: str
    strongly_typed: bool
    profile: dict[str, dict[str, list[int]]]  # input -> {"min", "opt", "max"} shapes
    io: list[dict[str, Any]]  # [{"name", "mode", "dtype", "shape"}] as the engine reports them
    onnx_path: str
    onnx_sha256: str
    options: BuildOptions
    model_meta: dict[str, Any]
    built_at: str = ""
    build_seconds: float = 0.0
    echogen_version: str = ""
    platform: str = ""
    layer_precisions: dict[str, int] = field(default_factory=dict)
    engine_sha256: str = ""  # of the engine file; "" in provenance written before it was kept
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        # JSON-shaped from the start (tuples -> lists), so a provenance equals its read-back.
        for name in ("profile", "io", "model_meta", "layer_precisions"):
            object.__setattr__(self, name, json.loads(json.dumps(getattr(self, name))))

    @property
    def environment(self) -> Environment:
        return Environment(self.tensorrt_version, self.device_name, self.compute_capability)

    @property
    def meta(self) -> ModelMeta:
        """The source model's conventions (what the runtime needs to feed the engine)."""
        props = {META_PREFIX + k: json.dumps(v) for k, v in self.model_meta.items()}
        return ModelMeta.from_props(props, source=f"provenance of {self.onnx_path}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "provenance") -> Provenance:
        """Inverse of to_dict; unknown keys are ignored, missing ones raise EngineMismatch."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        version = values.get("format_version", 1)
        if _is_int(version) and version > FORMAT_VERSION:
            raise EngineMismatch(
                f"{source} | written by a newer echogen-trt (format "
                f"{values['format_version']}, this one reads {FORMAT_VERSION}). "
                "Hint: upgrade echogen-trt or rebuild the engine."
            )
        validate_provenance(values, source)
        values["options"] = BuildOptions(**values["options"])
        return cls(**values)


def provenance_path(engine_path: str | os.PathLike[str]) -> Path:
    """`model.engine` -> `model.engine.json`."""
    path = Path(engine_path)
    return path.with_name(path.name + SUFFIX)


def write_provenance(prov: Provenance, engine_path: str | os.PathLike[str]) -> Path:
    """Write `<engine>.json` atomically, with the sha256 of the engine file when it exists
    (the builder writes the engine first); returns its path."""
    path = provenance_path(engine_path)
    if not prov.engine_sha256 and Path(engine_path).is_file():
        prov = replace(prov, engine_sha256=sha256_file(engine_path))
    write_bytes_atomic(path, (json.dumps(prov.to_dict(), indent=2) + "\n").encode())
    return path


def read_provenance(engine_path: str | os.PathLike[str]) -> Provenance:
    """The provenance beside `engine_path`, or EngineMismatch when it is missing or corrupt."""
    path = provenance_path(engine_path)
    if not path.is_file():
        raise EngineMismatch(
            f"{engine_path} | no provenance file {path.name} beside the engine, so it cannot "
            "be checked against this machine (TensorRT version, GPU). Hint: rebuild it with "
            "`echogen-trt build-engine <model.onnx> --out <engine>`, which writes both, or "
            "load it unchecked from Python with TensorRTBackend(..., force=True)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # also bad UTF-8 and deep nesting
        raise EngineMismatch(
            f"{path} | unreadable provenance ({type(err).__name__}). Hint: rebuild the engine "
            "with `echogen-trt build-engine`."
        ) from err
    if not isinstance(data, dict):
        raise EngineMismatch(f"{path} | provenance is not a JSON object. Hint: rebuild.")
    return Provenance.from_dict(data, source=str(path))


def rebuild_command(prov: Provenance, engine_path: str | os.PathLike[str]) -> str:
    """The `echogen-trt build-engine` command that rebuilds this engine with its options."""
    parts = [
        "echogen-trt build-engine",
        shlex.quote(prov.onnx_path),
        f"--out {shlex.quote(str(engine_path))}",
        *prov.options.cli_args(),
    ]
    return " ".join(parts)


def mismatches(
    prov: Provenance,
    current: Environment,
    *,
    onnx_sha256: str | None = None,
    engine_path: str | os.PathLike[str] | None = None,
    onnx_path: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Each way the engine does not fit `current`, in words (empty: it fits). With
    `engine_path` the file's sha256 is checked against the recorded one; with `onnx_path` (or
    its `onnx_sha256`) the source ONNX is checked too."""
    found = []
    if prov.tensorrt_version != current.tensorrt_version:
        found.append(
            f"TensorRT: engine built with {prov.tensorrt_version}, "
            f"this machine has {current.tensorrt_version}"
        )
    if prov.compute_capability != current.compute_capability:
        found.append(
            f"GPU architecture: engine built for compute capability {prov.compute_capability} "
            f"({prov.device_name}), this GPU is {current.compute_capability} "
            f"({current.device_name})"
        )
    elif prov.device_name != current.device_name:
        found.append(
            f"GPU model: engine built on {prov.device_name!r}, this is {current.device_name!r}"
        )
    return found + integrity_problems(
        prov, engine_path=engine_path, onnx_path=onnx_path, onnx_sha256=onnx_sha256
    )


def integrity_problems(
    prov: Provenance,
    *,
    engine_path: str | os.PathLike[str] | None = None,
    onnx_path: str | os.PathLike[str] | None = None,
    onnx_sha256: str | None = None,
) -> list[str]:
    """The engine file and the source ONNX against the hashes recorded at build time."""
    found = []
    if engine_path is not None and prov.engine_sha256 and Path(engine_path).is_file():
        actual = sha256_file(engine_path)
        if actual != prov.engine_sha256:
            found.append(
                f"engine: {engine_path} has sha256 {actual[:16]}..., the build recorded "
                f"{prov.engine_sha256[:16]}... (the file was replaced or modified)"
            )
    if onnx_path is not None:
        if not Path(onnx_path).is_file():
            raise EngineMismatch(
                f"onnx {onnx_path} | not found, so the engine cannot be checked against it. "
                "Hint: pass the ONNX file the engine was built from."
            )
        onnx_sha256 = sha256_file(onnx_path)
    if onnx_sha256 is not None and onnx_sha256 != prov.onnx_sha256:
        where = f" ({onnx_path})" if onnx_path is not None else ""
        found.append(f"ONNX: {prov.onnx_path} changed since the engine was built{where}")
    return found


def check_compatible(
    prov: Provenance,
    current: Environment,
    *,
    engine_path: str | os.PathLike[str] = "model.engine",
    onnx_sha256: str | None = None,
    onnx_path: str | os.PathLike[str] | None = None,
) -> None:
    """Raise EngineMismatch listing every mismatch and the exact rebuild command. The engine
    file at `engine_path`, when it exists, must have the sha256 the build recorded."""
    found = mismatches(prov, current, onnx_sha256=onnx_sha256, onnx_path=onnx_path)
    changed = integrity_problems(prov, engine_path=engine_path)
    if not found and not changed:
        return
    listed = "\n".join(f"  - {m}" for m in [*found, *changed])
    env = len(found) > sum(m.startswith("ONNX:") for m in found)
    why = (
        "was built for another machine; TensorRT engines are tied to the TensorRT version and "
        "the GPU"
        if env
        else "does not match what was built (its provenance records the hashes)"
    )
    raise EngineMismatch(
        f"{engine_path} | {why}:\n{listed}\n"
        f"Hint: rebuild it here:\n  {rebuild_command(prov, engine_path)}\n"
        "(or, from Python, TensorRTBackend(..., force=True) to try it anyway)"
    )


# --- the validating reader: types and ranges of every field a loader relies on --------------

_REQUIRED = ("tensorrt_version", "device_name", "compute_capability", "precision",
             "strongly_typed", "profile", "io", "onnx_path", "onnx_sha256", "options",
             "model_meta")  # fmt: skip
_TYPES: dict[str, tuple[type, ...]] = {
    "strongly_typed": (bool,),
    "profile": (dict,),
    "io": (list,),
    "options": (dict,),
    "model_meta": (dict,),
    "build_seconds": (int, float),
    "layer_precisions": (dict,),
    "format_version": (int,),
}
_STRINGS = ("tensorrt_version", "device_name", "compute_capability", "precision", "onnx_path",
            "onnx_sha256", "built_at", "echogen_version", "platform", "engine_sha256")  # fmt: skip
_MAX_DIM = 2**31 - 1


def validate_provenance(values: dict[str, Any], source: str) -> None:
    """EngineMismatch naming `source` and the key when a provenance field is missing, of the
    wrong type or out of range (a tampered or truncated `<engine>.json`); nothing else escapes."""
    for key in _REQUIRED:
        if key not in values:
            _refuse(source, key, "present", "nothing")
    for key in _STRINGS:
        if key in values and not isinstance(values[key], str):
            _refuse(source, key, "a string", values[key])
    for key, types in _TYPES.items():
        ok = isinstance(values.get(key), types) and (bool in types or not _is_bool(values[key]))
        if key in values and not ok:
            _refuse(source, key, f"a {' or '.join(t.__name__ for t in types)}", values[key])
    _check_profile(values["profile"], source)
    _check_io(values["io"], source)
    _check_options(values["options"], source)
    for name, count in values.get("layer_precisions", {}).items():
        if not (_is_int(count) and count >= 0):
            _refuse(source, f"layer_precisions.{name}", "an integer >= 0", count)
    try:
        ModelMeta.from_props(
            {META_PREFIX + k: json.dumps(v) for k, v in values["model_meta"].items()},
            source=f"{source} (model_meta)",
        )
    except InputMismatch as err:
        raise EngineMismatch(str(err)) from err


def _check_profile(profile: dict[str, Any], source: str) -> None:
    for name, shapes in profile.items():
        key = f"profile.{name}"
        if not isinstance(shapes, dict) or sorted(shapes) != ["max", "min", "opt"]:
            _refuse(source, key, 'an object with "min", "opt" and "max" shapes', shapes)
        for which, shape in shapes.items():
            if not _is_shape(shape, minimum=1):
                _refuse(source, f"{key}.{which}", f"a list of integers 1..{_MAX_DIM}", shape)


def _check_io(io: list[Any], source: str) -> None:
    for i, tensor in enumerate(io):
        if not isinstance(tensor, dict):
            _refuse(source, f"io[{i}]", "an object", tensor)
        for field_name in ("name", "mode", "dtype"):
            if not isinstance(tensor.get(field_name), str):
                _refuse(source, f"io[{i}].{field_name}", "a string", tensor.get(field_name))
        if not _is_shape(tensor.get("shape"), minimum=-1):
            _refuse(
                source, f"io[{i}].shape", "a list of integers (-1: dynamic)", tensor.get("shape")
            )


def _check_options(options: dict[str, Any], source: str) -> None:
    known = {f.name: f for f in fields(BuildOptions)}
    for key, value in options.items():
        name = f"options.{key}"
        if key not in known:
            _refuse(source, name, f"one of {sorted(known)}", key)
        if key in ("min_batch", "opt_batch", "max_batch", "workspace_mb"):
            if not (_is_int(value) and 0 <= value <= _MAX_DIM):
                _refuse(source, name, f"an integer 0..{_MAX_DIM}", value)
        elif key == "dla_core":
            if value is not None and not (_is_int(value) and 0 <= value < 64):
                _refuse(source, name, "null or an integer 0..63", value)
        elif key == "timing_cache":
            if value is not None and not isinstance(value, str):
                _refuse(source, name, "null or a string", value)
        elif not isinstance(value, str):
            _refuse(source, name, "a string", value)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_shape(value: object, minimum: int) -> bool:
    return isinstance(value, list) and all(_is_int(v) and minimum <= v <= _MAX_DIM for v in value)


def _refuse(source: str, key: str, expected: str, got: object) -> NoReturn:
    shown = repr(got)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise EngineMismatch(
        f"{source} | incomplete or corrupt provenance: key {key!r} expected {expected}, got "
        f"{shown}. Hint: the file was altered or truncated; rebuild the engine with "
        "`echogen-trt build-engine`."
    )
