"""Which model wrote a `generate --out` folder, kept there as `echogen-generate.json`.

Without it, two runs with different models into one --out both report success and one run's
frames silently replace the other's (or, with --skip-existing, the folder mixes both models).
The manifest records the model's sha256; a run with another model is refused before any work
unless the user says `--replace-model`. Torch-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from echogen_trt import __version__
from echogen_trt.errors import ConfigError
from echogen_trt.fileio import sha256_file, show_path, write_text_atomic

NAME = "echogen-generate.json"
_HINT = (
    "Hint: choose another --out, or pass --replace-model to let this model's frames replace them"
)


def manifest_path(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / NAME


def check_manifest(
    out_dir: str | os.PathLike[str], model: str | os.PathLike[str], *, replace: bool = False
) -> str | None:
    """The model's sha256, after checking that no other model wrote `out_dir` (ConfigError
    naming both models); None when `model` is no file (its loader reports that). With
    `replace`, another model's manifest is accepted."""
    if not Path(model).is_file():
        return None
    digest = sha256_file(model)
    path = manifest_path(out_dir)
    if replace or not path.is_file():
        return digest
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        other, other_sha = str(recorded["model"]), str(recorded["model_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"--out manifest {show_path(path)} | unreadable ({type(err).__name__}), so which "
            f"model wrote this folder is unknown. Expected the JSON generate writes. {_HINT}."
        ) from err
    if other_sha != digest:
        raise ConfigError(
            f"--out {show_path(out_dir)} | holds frames of another model ({show_path(other)}, "
            f"sha256 {other_sha[:12]}...), not of {show_path(model)} ({digest[:12]}...). {_HINT}."
        )
    return digest


def write_manifest(
    out_dir: str | os.PathLike[str], model: str | os.PathLike[str], digest: str
) -> Path:
    """Record `model` as the one whose frames `out_dir` holds."""
    data = {
        "model": str(Path(model).resolve()),
        "model_sha256": digest,
        "echogen_version": __version__,
    }
    return write_text_atomic(manifest_path(out_dir), json.dumps(data, indent=2) + "\n")
