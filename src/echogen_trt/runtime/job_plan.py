"""Which files a generate run reads and where each frame goes, decided before any work starts.

Inputs are folders (optionally walked recursively), glob patterns or files. Each output mirrors its
input's path relative to the folder or pattern root, under `out_dir`, with the frame suffix. The
plan is refused as a whole if it would write outside `out_dir`, over an input, into an input's own
folder, or two frames to one path: a wrong `--out` must never cost the user their masks.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from echogen_trt.errors import ConfigError
from echogen_trt.fileio import show_path
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


_LOOP = "is a symlink loop (the link leads back to itself), so it names no mask. Hint: remove it"


def collect_inputs(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude: Path | None = None,
) -> tuple[list[MaskItem], list[tuple[str, str]]]:
    """(mask files found, [(input, reason)] for inputs that name nothing readable, and for
    folders that could not be listed: their masks are missing, so the run must not pass).

    Files under `exclude` (the output folder) are never inputs. Hidden files are skipped.
    """
    items: dict[Path, MaskItem] = {}
    failed: list[tuple[str, str]] = []
    for raw in inputs:
        text = os.fspath(raw)
        found, problems = _expand(text, recursive)
        failed += [(show_path(name), reason) for name, reason in problems]
        for item in found:
            try:
                real = item.path.resolve()
            except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
                failed.append((show_path(item.path), _LOOP))
                continue
            items.setdefault(real, item)  # the same file named twice is read once
    kept, inside = split_inside(list(items.values()), exclude)
    if inside:
        log.info("%d file(s) inside the output folder %s are not read", len(inside), exclude)
    return kept, failed


def split_inside(
    items: Sequence[MaskItem], out: Path | None
) -> tuple[list[MaskItem], list[MaskItem]]:
    """(items outside `out`, items inside it): files in the output folder are never inputs."""
    if out is None:
        return list(items), []
    resolved = out.resolve()
    inside = [i for i in items if i.path.resolve().is_relative_to(resolved)]
    return [i for i in items if i not in inside], inside


def _expand(text: str, recursive: bool) -> tuple[list[MaskItem], list[tuple[str, str]]]:
    path = Path(text)
    if path.is_dir():
        files, unreadable = _walk(path, recursive)
        items = [MaskItem(p, PurePosixPath(p.relative_to(path).as_posix())) for p in files]
        return items, unreadable
    if path.exists() or path.is_symlink():
        return [MaskItem(path, PurePosixPath(path.name))], []
    if glob.has_magic(text):
        root = _glob_root(text)
        if "**" in text:
            matches, unreadable = _glob_recursive(root, Path(text).parts[len(root.parts) :])
        else:
            matches, unreadable = sorted(Path(m) for m in glob.glob(text)), []
        files = [m for m in matches if m.is_file() and not m.name.startswith(".")]
        if not files:
            return [], [(text, "no file matches this pattern"), *unreadable]
        items = [MaskItem(m, PurePosixPath(m.relative_to(root).as_posix())) for m in files]
        return items, unreadable
    return [], [(text, "does not exist")]


def _walk(root: Path, recursive: bool) -> tuple[list[Path], list[tuple[str, str]]]:
    """Mask files under `root` and [(folder, reason)] for folders that could not be listed."""
    unreadable: list[tuple[str, str]] = []

    def report(err: OSError) -> None:
        folder = err.filename if err.filename is not None else root
        unreadable.append((show_path(folder), _unreadable(err)))

    if not recursive:
        try:
            return sorted(p for p in root.iterdir() if p.is_file() and _is_mask_file(p)), []
        except OSError as err:
            report(err)
            return [], unreadable
    found = []
    for folder, dirs, files in os.walk(root, onerror=report):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if _is_mask_file(Path(folder) / f)]
    return sorted(found), unreadable


def _unreadable(err: OSError) -> str:
    return (
        f"folder cannot be read ({err.strerror or err}), so its masks were not generated. "
        "Hint: fix its permissions or leave it out of the inputs"
    )


def _glob_recursive(root: Path, pattern: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files under `root` matching `pattern` (path parts, `**` = any number of folders).

    Unlike glob.glob, which follows every symlink and never ends on a link to a parent folder,
    this visits each real folder once; hidden folders are skipped, as glob skips them.
    """
    seen: set[str] = set()
    found: list[Path] = []
    unreadable: list[tuple[str, str]] = []

    def report(err: OSError) -> None:
        unreadable.append((show_path(err.filename or root), _unreadable(err)))

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=report):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder).relative_to(root).parts
        found += [Path(folder) / f for f in files if _match_parts((*base, f), tuple(pattern))]
    return sorted(found), unreadable


def _match_parts(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether relative path `parts` matches glob `pattern` parts (`**` spans 0+ folders)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    head = pattern[0]
    return (
        bool(parts)
        and (not parts[0].startswith(".") or head.startswith("."))
        and fnmatch.fnmatchcase(parts[0], head)
        and _match_parts(parts[1:], pattern[1:])
    )


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


def refuse_foreign_files(inside: Sequence[MaskItem], jobs: Sequence[Job], out_dir: Path) -> None:
    """ConfigError when --out lies among the inputs and already holds mask files that are not
    frames of this plan (in any format, or overlays): they would be silently left out as
    inputs, and the frames mixed in with them. Frames of an earlier run like this one pass."""
    ours = set()
    for job in jobs:
        for path in (job.out, job.panel):
            if path is not None:
                ours.add(_frame_base(path))
    foreign = [i.path for i in inside if _frame_base(i.path) not in ours]
    if foreign:
        shown = ", ".join(show_path(p) for p in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(
            f"--out {show_path(out_dir)} | lies among the inputs and already holds "
            f"{len(foreign)} mask file(s) that are not frames of this run ({shown}); they would "
            "be skipped as inputs and the frames mixed in with them. Expected an --out outside "
            f"the inputs, or one holding only earlier frames. Hint: --out {out_dir.name}_frames "
            "beside the inputs."
        )


def _frame_base(path: Path) -> Path:
    """Frame, overlay and mask of one input share this: folder / stem without `_overlay`."""
    stem = mask_stem(path.name) if mask_suffix(path) else Path(path.name).stem
    return path.resolve().parent / stem.removesuffix("_overlay")


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
