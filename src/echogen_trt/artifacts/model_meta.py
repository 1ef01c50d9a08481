"""The conventions a deployed model carries with it (ONNX metadata_props, engine provenance).

Export writes them; the runtime reads them and needs nothing else to feed the model correctly.
Torch-free on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from echogen_trt import __version__
from echogen_trt.artifacts.precision import FP32
from echogen_trt.errors import InputMismatch

META_PREFIX = "echogen."


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
    input_size: tuple[int, int] = (256, 256)  # (H, W)
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
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMeta:
        """Inverse of to_props; raises InputMismatch naming the file when keys are missing."""
        names = {f.name for f in fields(cls)}
        values: dict[str, object] = {}
        for key, raw in props.items():
            if key.startswith(META_PREFIX) and key[len(META_PREFIX) :] in names:
                values[key[len(META_PREFIX) :]] = json.loads(raw)
        missing = [n for n in ("experiment", "kept_labels") if n not in values]
        if missing:
            raise InputMismatch(
                f"{source} | has no echogen metadata ({', '.join(missing)} missing). "
                "Hint: export it with `echogen-trt export`, which records the conventions."
            )
        for key in ("kept_labels", "input_size"):
            if key in values:
                values[key] = tuple(values[key])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


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
