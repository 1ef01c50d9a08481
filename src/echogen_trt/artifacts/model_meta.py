"""The conventions a deployed model carries with it (ONNX metadata_props, engine provenance).

Export writes them; the runtime reads them and needs nothing else to feed the model correctly.
Torch-free on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NoReturn

from echogen_trt import __version__
from echogen_trt.artifacts.precision import BF16, FP32, INT8, PRECISIONS
from echogen_trt.errors import InputMismatch

META_PREFIX = "echogen."
# The reference model's square input and output size; every default image size reads it.
REFERENCE_SIZE = 256


@dataclass(frozen=True)
class ModelMeta:
    """What a model expects and produces.

    io = "float": input float32 (N, 1, H, W) of raw label values with unkept labels already zero,
    output float32 (N, 1, H, W) in [0, 1].
    io = "uint8": input uint8 (N, H, W) raw labels 0..3 (unkept labels zeroed inside the graph),
    output uint8 (N, H, W) in 0..255.
    """

    experiment: str
    kept_labels: tuple[int, ...]
    input_size: tuple[int, int] = (REFERENCE_SIZE, REFERENCE_SIZE)  # (H, W)
    io: str = "float"  # "float" | "uint8"
    precision: str = FP32  # one of precision.PRECISIONS (of the weights/compute in the file)
    input_name: str = "mask"
    output_name: str = "echo"
    step: int = 0
    checkpoint_sha256: str = ""
    package_version: str = ""
    model_config: dict[str, object] = field(default_factory=dict)
    # training-recipe choices that change what the model learned, e.g. {"output_bias":
    # "target_mean"}; {"output_bias": "zero"} is the paper's reference recipe (README)
    recipe: dict[str, object] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        """Flat string map for ONNX metadata_props (every value JSON-encoded)."""
        return {META_PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: Mapping[str, object], source: str = "model") -> ModelMeta:
        """Inverse of to_props, and the one validating reader of a model's metadata (ONNX
        metadata_props, OpenVINO rt_info, engine provenance): every key is checked for type and
        range, and every refusal is an InputMismatch naming `source` and the key."""
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in props.items():
            if isinstance(key, str) and key.startswith(META_PREFIX):
                name = key[len(META_PREFIX) :]
                if name in names:
                    values[name] = _checked(name, _decoded(raw, key, source), key, source)
        missing = [n for n in ("experiment", "kept_labels") if n not in values]
        if missing:
            raise InputMismatch(
                f"{source} | has no echogen metadata ({', '.join(missing)} missing). "
                "Hint: export it with `echogen-trt export`, which records the conventions."
            )
        return cls(**values)


_MAX_SIDE = 16384  # frames larger than this per side are no model of ours (and would not fit)
_LABELS = (1, 2, 3)
_IO = ("float", "uint8")
_PRECISIONS = (*PRECISIONS, INT8, BF16)


def _decoded(raw: object, key: str, source: str) -> Any:
    if not isinstance(raw, str):
        _refuse(source, key, "a JSON-encoded string", raw)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError, huge integers, deep nesting
        _refuse(source, key, "valid JSON", raw)


def _refuse(source: str, key: str, expected: str, got: object) -> NoReturn:
    shown = repr(got)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise InputMismatch(
        f"{source} | metadata {key}: expected {expected}, got {shown}. Hint: the file was "
        "altered or is not an echogen-trt model; export it again with `echogen-trt export`."
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(name: str, value: Any, key: str, source: str) -> Any:
    """`value` (decoded JSON) of field `name` in the type the dataclass holds, or a refusal."""
    if name == "kept_labels":
        ok = isinstance(value, list) and bool(value) and all(_is_int(v) for v in value)
        if not ok or not set(value) <= set(_LABELS) or len(set(value)) != len(value):
            _refuse(source, key, f"a non-empty list of distinct labels from {list(_LABELS)}", value)
        return tuple(value)
    if name == "input_size":
        if not (isinstance(value, list) and len(value) == 2) or not all(
            _is_int(v) and 1 <= v <= _MAX_SIDE for v in value
        ):
            _refuse(source, key, f"[H, W], two integers 1..{_MAX_SIDE}", value)
        return tuple(value)
    if name == "io" and value not in _IO:
        _refuse(source, key, f"one of {list(_IO)}", value)
    if name == "precision" and value not in _PRECISIONS:
        _refuse(source, key, f"one of {list(_PRECISIONS)}", value)
    if name in ("experiment", "input_name", "output_name") and not (
        isinstance(value, str) and value
    ):
        _refuse(source, key, "a non-empty string", value)
    if name in ("checkpoint_sha256", "package_version") and not isinstance(value, str):
        _refuse(source, key, "a string", value)
    if name == "step" and not (_is_int(value) and 0 <= value < 2**63):
        _refuse(source, key, "an integer >= 0", value)
    if name in ("model_config", "recipe") and not isinstance(value, dict):
        _refuse(source, key, "a JSON object", value)
    return value


def meta_from_checkpoint_info(info: Mapping[str, Any], *, fused_io: bool = False) -> ModelMeta:
    """The ModelMeta (FP32) an ONNX export of a checkpoint carries, from `load_generator`'s info
    dict. The one place both the exporter and the torch backend derive it, so they agree."""
    size = info["image_size"]
    size_hw = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return ModelMeta(
        experiment=str(info["experiment"]),
        kept_labels=tuple(int(k) for k in info["kept_labels"]),
        input_size=size_hw,
        io="uint8" if fused_io else "float",
        precision=FP32,
        step=int(info.get("step", 0)),
        checkpoint_sha256=str(info.get("sha256", "")),
        package_version=__version__,
        model_config=dict(info.get("model_config", {})),
        recipe=dict(info.get("recipe", {})),
    )
