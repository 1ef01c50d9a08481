"""Which demo steps are up to date: `state.json` in the output folder, one entry per step.

A step is reused when its key (a hash of its parameters and of the keys of the steps it reads
from) matches the stored one and every output it recorded still exists. Keys chain, so changing
`--patients` redoes the data and everything after it, while changing the benchmark batches
redoes only the benchmark. The file is also the folder's marker: `run_demo` refuses to write
into a non-empty folder that has none.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from echogen_trt import __version__
from echogen_trt.errors import DataError
from echogen_trt.fileio import write_text_atomic

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
FORMAT = 1


def step_key(name: str, params: dict[str, Any], deps: list[str] | None = None) -> str:
    """Short stable hash of a step's parameters and of its upstream keys."""
    blob = json.dumps(
        {"step": name, "params": params, "deps": deps or [], "version": __version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class DemoState:
    """The steps recorded in `<out>/state.json`: load, look up, record (saved at once)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / STATE_FILE
        self.steps: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, out: Path, fresh: bool) -> DemoState:
        """The state of `out` (empty when `fresh`); DataError for a foreign non-empty folder."""
        state = cls(out)
        if out.exists() and not out.is_dir():
            raise DataError(f"demo --out {out} | exists and is not a folder. Hint: pick another.")
        if out.is_dir() and any(out.iterdir()) and not state.path.is_file():
            raise DataError(
                f"demo --out {out} | folder is not empty and holds no {STATE_FILE} (not a "
                "previous demo). Expected an empty or new folder, or a previous demo output. "
                "Hint: pick another --out."
            )
        out.mkdir(parents=True, exist_ok=True)
        if not fresh and state.path.is_file():
            state.steps = _read(state.path)
        return state

    def reusable(self, name: str, key: str) -> dict[str, Any] | None:
        """The stored entry when `name` ran with `key` and its outputs all exist, else None."""
        entry = self.steps.get(name)
        if not entry or entry.get("key") != key or entry.get("status") != "done":
            return None
        missing = [p for p in entry.get("outputs", {}).values() if not (self.out / p).exists()]
        if missing:
            log.info("%s: outputs missing (%s); running it again", name, ", ".join(missing))
            return None
        return entry

    def record(self, name: str, entry: dict[str, Any]) -> None:
        """Store a step's entry and write the file atomically."""
        self.steps[name] = entry
        self.save()

    def forget(self, name: str) -> None:
        """Drop a step (before redoing it: a crash must not leave a stale entry behind)."""
        if self.steps.pop(name, None) is not None:
            self.save()

    def save(self) -> None:
        data = {"format": FORMAT, "generator": "echogen-trt demo", "steps": self.steps}
        write_text_atomic(self.path, json.dumps(data, indent=2, default=str) + "\n")


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """Stored steps; an unreadable or foreign file means nothing is reused (with a warning)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("%s is unreadable (%s): every step runs again", path, err)
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        log.warning("%s has another format: every step runs again", path)
        return {}
    steps = data.get("steps")
    return steps if isinstance(steps, dict) else {}
