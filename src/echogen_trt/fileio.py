"""Atomic file writes: every artefact (frame, checkpoint, ONNX file, engine, provenance) is
written to a temporary file beside its target and moved into place with `os.replace`, so an
interrupted run never leaves half a file. Files get the user's umask (0o666 & ~umask), not
mkstemp's 0o600, so a model or engine can be shared like any other file.

Every write and output folder goes through here, so one mechanism turns what the file system
refuses (no permission, a file in the way, a dangling symlink, a full disk) into a one-line
`OutputError` naming the path. A temporary file is locked (flock) while it is written: one
nobody holds is left over from a killed run, and `remove_stale_temps` deletes it.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from echogen_trt.errors import ConfigError, OutputError

try:
    import fcntl
except ImportError:  # Windows: stale temporary files are recognised by age instead
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")  # atomic_write's temporary names
_STALE_AGE_S = 3600.0  # without flock: a temporary file this old is left over
_HINTS = {
    errno.ENOSPC: "free space on that disk, or choose an --out on another one",
    errno.EDQUOT: "free space (disk quota exceeded), or choose an --out on another disk",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.EACCES: "check the folder's permissions, or choose another --out",
    errno.EPERM: "check the folder's permissions, or choose another --out",
}


def show_path(path: str | os.PathLike[str]) -> str:
    """`path` for a one-line message: quoted (repr) when it holds a newline or other control
    character, so a hostile file name cannot split or forge a line of output."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def output_error(path: str | os.PathLike[str], err: OSError, what: str = "output") -> OutputError:
    """The one-line OutputError for an OSError met while writing `path`."""
    blocker = _file_in_the_way(Path(path))
    if blocker is not None:
        problem = f"goes through {show_path(blocker)}, which is a file, not a folder"
        hint = "choose an --out whose folders are folders"
    else:
        problem = f"cannot be written ({err.strerror or err})"
        hint = _HINTS.get(err.errno or 0, "choose another --out")
    return OutputError(f"{what} {show_path(path)} | {problem}. Hint: {hint}.")


@contextmanager
def writing(path: str | os.PathLike[str], what: str = "output") -> Iterator[None]:
    """Turn an OSError raised inside the block into `output_error(path)` (one line, exit 1)."""
    try:
        yield
    except OSError as err:
        raise output_error(path, err, what) from err


def ensure_dir(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Create folder `path` (and its parents); OutputError naming the problem otherwise."""
    folder = Path(path)
    if folder.is_dir():
        return folder
    check_dir_creatable(folder, what)
    with writing(folder, what):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_dir_creatable(path: str | os.PathLike[str], what: str = "--out") -> None:
    """OutputError now, before any work, when folder `path` exists as something else or cannot
    be created (a dangling symlink, a file in the way, a parent without write permission).
    Creates nothing."""
    folder = Path(path)
    refuse_dangling_link(folder, what, "a folder")
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"{what} {show_path(folder)} | is a file, not a folder. Hint: choose another {what}."
        )
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise output_error(folder, OSError(errno.ENOTDIR, "Not a directory"), what)
    existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise output_error(folder, OSError(errno.EACCES, "Permission denied"), what)


def refuse_dangling_link(path: Path, what: str, kind: str) -> None:
    """OutputError when `path` is a symlink to nothing: writing through it would create the
    link's target somewhere the user did not name (or replace the link)."""
    if path.is_symlink() and not path.exists():
        raise OutputError(
            f"{what} {show_path(path)} | is a dangling symlink (to "
            f"{show_path(os.readlink(path))}). Expected {kind} or a new path. Hint: create "
            "the link's target or remove the link."
        )


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing non-folder among `path`'s parents (`file.png/frames` -> file.png)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; on success it replaces `path`,
    on any exception it is removed and `path` is left as it was. What the file system refuses
    becomes OutputError."""
    target = Path(path)
    refuse_dangling_link(target, "output", "a file")
    if not target.parent.is_dir():
        if _file_in_the_way(target) is not None:
            raise output_error(target, OSError(errno.ENOTDIR, "Not a directory"))
        ensure_dir(target.parent, "output folder")
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    with writing(target):
        fd = os.open(tmp, flags, 0o666)
    try:
        _lock(fd)
        with writing(target), _open_temp(fd) as handle:
            yield handle
        with writing(target):
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _lock(fd: int) -> None:
    """Mark a temporary file "being written" (released on close or kill). Best effort: where the
    file system has no flock, stale temporary files are never taken for live ones and stay."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        log.debug("no flock on %s: %s", fd, err)


def _open_temp(fd: int) -> BinaryIO:
    """The handle atomic_write writes through (tests replace it to simulate a full disk)."""
    return os.fdopen(fd, "wb")


def remove_stale_temps(
    folder: str | os.PathLike[str], names: Iterable[str] | None = None
) -> list[Path]:
    """Delete the temporary files `atomic_write` left in `folder` when its process was killed
    (of the targets `names`, or of any target); returns them. One still being written (locked
    by a live process) is kept, so a concurrent run is never disturbed."""
    wanted = None if names is None else set(names)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match and (wanted is None or match["name"] in wanted) and _is_stale(entry.path):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    if removed:
        log.info("removed %d temporary file(s) of an interrupted run in %s", len(removed), folder)
    return removed


def _is_stale(path: str) -> bool:
    try:
        if fcntl is None:
            return time.time() - os.stat(path).st_mtime > _STALE_AGE_S
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # locked: a live process is writing it
    finally:
        os.close(fd)
    return True


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically (reports, JSON summaries, state files)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (checkpoint and ONNX provenance hashes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_distinct(
    path: str | os.PathLike[str] | None,
    others: dict[str, str | os.PathLike[str]],
    *,
    what: str,
) -> None:
    """ConfigError when `path` is the same file as one of `others` ({role: path}), before any
    work: `--timing-cache model.onnx` would be overwritten with the cache after the build."""
    if path is None:
        return
    target = Path(path).resolve()
    for role, other in others.items():
        if target == Path(other).resolve():
            raise ConfigError(
                f"{what} {show_path(path)} | is also the {role}; writing it would destroy that "
                f"file. Expected a separate file. Hint: e.g. {what} timing.cache."
            )


def check_output_path(
    out: str | os.PathLike[str],
    *,
    inputs: Sequence[str | os.PathLike[str]],
    suffixes: Sequence[str],
    what: str,
) -> Path:
    """Refuse an output that would overwrite one of `inputs` or lacks an expected suffix, before
    any work: `export run/best.pt --out run/best.pt` must never replace the weights."""
    target = Path(out)
    if not any(target.name.endswith(s) for s in suffixes):
        raise ConfigError(
            f"{what} {target} | unexpected file name. Expected a name ending in "
            f"{' or '.join(suffixes)}. Hint: e.g. --out model{suffixes[0]}"
        )
    check_outputs({what: target}, inputs={f"input file {show_path(s)}": s for s in inputs})
    return target


PathArg = str | os.PathLike[str]


def check_outputs(
    files: Mapping[str, PathArg | None],
    *,
    inputs: Mapping[str, PathArg | None],
    folders: Mapping[str, PathArg | None] | None = None,
) -> None:
    """The one output-safety rule, applied by every command to every file it will write
    (siblings included: `.bin`, `.json` provenance, `.fp16.onnx`) before any work starts.

    `files` and `folders` map what is written ("--json", "report.md") to its path; `inputs` map
    a role ("model", "dataset") to an input file or folder. Refused, in one line naming both:
    an output that is an input (the same file, also through a link), one inside an input folder
    (a dataset), a folder where a file goes or a file where a folder goes. None is skipped.
    """
    given = {role: Path(p) for role, p in inputs.items() if p is not None}
    for what, path in (folders or {}).items():
        if path is not None:
            _check_output(what, Path(path), given, "a folder")
    for what, path in files.items():
        if path is not None:
            _check_output(what, Path(path), given, "a file")


def _check_output(what: str, out: Path, inputs: dict[str, Path], kind: str) -> None:
    shown = show_path(out)
    if kind == "a file" and out.is_dir():
        raise OutputError(
            f"{what} {shown} | is a folder. Expected a file path (or nothing) there. Hint: move "
            "that folder away, or choose another output name."
        )
    if kind == "a folder" and out.exists() and not out.is_dir():
        raise OutputError(f"{what} {shown} | is a file. Expected a folder. Hint: choose another.")
    target = out.resolve()
    for role, source in inputs.items():
        if source.is_dir() and target.is_relative_to(source.resolve()):
            raise ConfigError(
                f"{what} {shown} | lies inside the {role} {show_path(source)}; outputs never go "
                f"into an input. Expected a path outside it. Hint: choose another {what} path."
            )
        if _same_file(out, source):
            raise ConfigError(
                f"{what} {shown} | is also the {role}; writing it would destroy that input. "
                f"Expected a separate path. Hint: choose another {what} path."
            )


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name one file: the same path after links, or hard links."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@contextmanager
def exclusive_folder(folder: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the folder itself, released on exit or
    kill) while a run writes into it: a second run into the same folder is an OutputError now,
    instead of each deleting or tripping over the other's files. Best effort without flock."""
    if fcntl is None:
        yield
        return
    with writing(folder, what):
        fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise OutputError(
                f"{what} {show_path(folder)} | another run is writing into it now. Expected one "
                "run per folder. Hint: wait for it to finish, or choose another folder."
            ) from err
        except OSError as err:  # a file system without flock
            log.debug("no flock on %s: %s", folder, err)
        yield
    finally:
        os.close(fd)


@contextmanager
def locked_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Iterator[Path]:
    """A temporary folder in `parent` (staging beside the outputs, so the final move is a
    rename), locked while in use and removed on exit. First deletes the `prefix` folders a
    killed run left there (unlocked ones only: a concurrent run's folder is kept)."""
    remove_stale_dirs(parent, prefix)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as tmp:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            _lock(fd)
            yield Path(tmp)
        finally:
            os.close(fd)


def remove_stale_dirs(parent: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Delete the `locked_temp_dir` folders named `prefix*` in `parent` whose run is dead."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    removed = []
    for entry in entries:
        ours = entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False)
        if ours and _is_stale(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    if removed:
        log.info("removed %d temporary folder(s) of an interrupted run in %s", len(removed), parent)
    return removed
