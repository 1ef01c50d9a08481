"""Where trained segmenters are kept, and the key that says when one can be reused (torch-free).

A segmenter depends on the tree's files, the frames it learnt from and how it was trained. The key
hashes the tree's file list with sizes and modification times (cheap to compute, and any rewrite
of the tree changes it), the training settings, the frame size and whatever else the caller adds
(the generator's SHA-256 for a segmenter trained on its frames). A stale key just trains anew.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from echogen_trt.fileio import default_cache_dir as default_cache_dir  # kept here for callers

KEY_VERSION = 1  # bump when the training code changes what a key produces


def tree_fingerprint(root: Path, skip: Path | None = None) -> str:
    """SHA-256 of every file's relative path, size and mtime under `root` (`skip` left out)."""
    root = Path(root)
    skip_resolved = Path(skip).resolve() if skip is not None else None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if skip_resolved is not None and skip_resolved in path.resolve().parents:
            continue
        stat = path.stat()
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-ready `parts` (sorted keys)."""
    text = json.dumps({"key_version": KEY_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def segmenter_path(cache_dir: Path, kind: str, key: str) -> Path:
    """cache_dir/segmenters/<kind>-<key>.pt"""
    return Path(cache_dir) / "segmenters" / f"{kind}-{key}.pt"
