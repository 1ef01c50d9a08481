"""Which files a generate run reads and where each frame goes, decided before any work starts.

Inputs are folders (optionally walked recursively), glob patterns or files. Each output mirrors its
input's path relative to the folder or pattern root, under `out_dir`, with the frame suffix. The
plan is refused as a whole if it would write outside `out_dir`, over an input, into an input's own
folder, or two frames to one path: a wrong `--out` must never cost the user their masks.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from echogen_trt.errors import ConfigError
from echogen_trt.runtime.io import mask_stem, mask_suffix

log = logging.getLogger(__name__)

FORMATS = {"png": ".png", "jpg": ".jpg", "npy": ".npy"}
_MEDICAL = (".mhd", ".nii", ".nii.gz")


@dataclass(frozen=True)
class MaskItem:
    """One input file and its path relative to the folder or pattern it was found under."""

    path: Path
    rel: PurePosixPath


@dataclass(frozen=True)
class Job:
    """One mask to turn into a frame: where it comes from and where its outputs go."""

    src: Path
    rel: str
    out: Path
    panel: Path | None  # the side-by-side check image, with --overlay


def collect_inputs(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude: Path | None = None,
) -> tuple[list[MaskItem], list[tuple[str, str]]]:
    """(mask files found, [(input, reason)] for inputs that name nothing readable).

    Files under `exclude` (the output folder) are never inputs. Hidden files are skipped.
    """
    excluded = exclude.resolve() if exclude is not None else None
    items: dict[Path, MaskItem] = {}
    failed: list[tuple[str, str]] = []
    skipped = 0
    for raw in inputs:
        text = os.fspath(raw)
        found, reason = _expand(text, recursive)
        if reason:
            failed.append((text, reason))
        for item in found:
            resolved = item.path.resolve()
            if excluded is not None and resolved.is_relative_to(excluded):
                skipped += 1
                continue
            items.setdefault(resolved, item)  # the same file named twice is read once
    if skipped:
        log.info("%d file(s) inside the output folder %s are not read as inputs", skipped, exclude)
    return list(items.values()), failed


def _expand(text: str, recursive: bool) -> tuple[list[MaskItem], str]:
    path = Path(text)
    if path.is_dir():
        return [
            MaskItem(p, PurePosixPath(p.relative_to(path).as_posix()))
            for p in _walk(path, recursive)
        ], ""
    if path.exists() or path.is_symlink():
        return [MaskItem(path, PurePosixPath(path.name))], ""
    if glob.has_magic(text):
        root = _glob_root(text)
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        files = [m for m in matches if m.is_file() and not m.name.startswith(".")]
        if not files:
            return [], "no file matches this pattern"
        return [MaskItem(m, PurePosixPath(m.relative_to(root).as_posix())) for m in files], ""
    return [], "does not exist"


def _walk(root: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return sorted(p for p in root.iterdir() if p.is_file() and _is_mask_file(p))
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if _is_mask_file(Path(folder) / f)]
    return sorted(found)


def _is_mask_file(path: Path) -> bool:
    """Mask-like names only: in a CAMUS folder the .mhd/.nii.gz images sit beside the _gt masks."""
    if path.name.startswith("."):
        return False
    suffix = mask_suffix(path)
    if suffix in _MEDICAL:
        stem = mask_stem(path)
        return stem.endswith("_gt") and not stem.endswith("sequence_gt")
    return bool(suffix)


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    plain = [p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return Path(*plain) if plain else Path(".")


def plan_jobs(
    items: Sequence[MaskItem],
    out_dir: Path,
    *,
    fmt: str = "png",
    overlay: bool = False,
    input_dirs: Iterable[Path] = (),
) -> list[Job]:
    """One Job per item with its output paths; ConfigError if the plan is unsafe (see module)."""
    out = out_dir.resolve()
    suffix = FORMATS[fmt]
    refuse_input_folder(
        out, [d.resolve() for d in input_dirs] + [i.path.resolve().parent for i in items]
    )
    inputs = {i.path.resolve() for i in items}
    jobs: list[Job] = []
    owner: dict[Path, Path] = {}
    for item in sorted(items, key=lambda i: (str(i.rel), str(i.path))):
        base = out_dir / item.rel.parent / mask_stem(item.rel.name)
        target = base.with_name(base.name + suffix)
        panel = base.with_name(base.name + "_overlay.png") if overlay else None
        for path in (target, panel):
            if path is None:
                continue
            _check_target(path, out, inputs, item)
            clash = owner.setdefault(path, item.path)
            if clash != item.path:
                raise ConfigError(
                    f"out {path} | would be written from both {clash} and {item.path}. Expected "
                    "one input per output name. Hint: generate each folder into its own --out."
                )
        jobs.append(Job(item.path, str(item.rel), target, panel))
    return jobs


def refuse_input_folder(out: Path, folders: Iterable[Path]) -> None:
    """ConfigError if `out` (resolved) is one of `folders` (resolved)."""
    for folder in folders:
        if out == folder:
            raise ConfigError(
                f"--out {out} | is an input folder. Expected a separate folder, so frames never "
                f"mix with (or overwrite) masks. Hint: --out {out.name}_frames."
            )


def _check_target(path: Path, out: Path, inputs: set[Path], item: MaskItem) -> None:
    resolved = path.resolve()
    if resolved in inputs:
        raise ConfigError(
            f"out {path} | would overwrite the input {resolved} (from {item.path}). "
            "Hint: choose another --out."
        )
    if not resolved.is_relative_to(out):
        raise ConfigError(
            f"out {path} | resolves to {resolved}, outside --out {out} (a symlink?). "
            "Expected every frame under --out."
        )


def shard_jobs(jobs: Sequence[Job], shard: tuple[int, int] | None) -> list[Job]:
    """Shard i of n: the jobs whose index in sorted relative-path order is i modulo n."""
    if shard is None:
        return list(jobs)
    index, count = shard
    ordered = sorted(jobs, key=lambda j: (j.rel, str(j.src)))
    return [job for k, job in enumerate(ordered) if k % count == index]


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n; ConfigError otherwise."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise ConfigError(
            f"--shard {text!r} | invalid. Expected i/n with 0 <= i < n, e.g. 0/4 ... 3/4."
        )
    return index, count
