"""Write a complete synthetic CAMUS tree of phantom patients, in either public layout.

CAMUS cannot be downloaded here, so this tree is what the tests, the demo and the benchmarks run
on. Patients are `patient0001..patientNNNN`; the last ~10 % are the test group and the ~10 % before
them the validation group (nifti: `database_split/` files; mhd: the test group goes to `testing/`,
with its masks kept - synthetic data has nothing to withhold). A `synth.json` marker at the root
records how the tree was made; only a folder holding one (or an empty one) is written into
unless `overwrite=True`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from echogen_trt import __version__
from echogen_trt.data.anatomy import VIEWS
from echogen_trt.data.camus_write import (
    LAYOUTS,
    NIFTI_DIR,
    SPLIT_DIR,
    write_split_files,
    write_view,
)
from echogen_trt.data.phantom import patient_id, synth_patient
from echogen_trt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

MARKER = "synth.json"
GENERATOR = "echogen-trt synth"
_OWNED = (NIFTI_DIR, SPLIT_DIR, "training", "testing")  # what a previous synth run wrote


@dataclass(frozen=True)
class SynthSummary:
    """What `synthesize_dataset` wrote, for logs, `--json` and the marker file."""

    root: str
    layout: str
    patients: int
    seed: int
    views: tuple[str, ...]
    with_sequence: bool
    splits: dict[str, int]
    files: int
    bytes: int
    seconds: float
    workers: int

    @property
    def patients_per_minute(self) -> float:
        return 60.0 * self.patients / max(self.seconds, 1e-9)

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "views": list(self.views),
            "patients_per_minute": self.patients_per_minute,
        }


def split_patients(n: int) -> dict[str, list[str]]:
    """Sequential 80/10/10 split of patient1..n (valid and test get at least one from n >= 3)."""
    ids = [patient_id(i) for i in range(1, n + 1)]
    n_hold = max(1, round(0.1 * n)) if n >= 3 else 0
    n_train = n - 2 * n_hold
    return {
        "train": ids[:n_train],
        "valid": ids[n_train : n_train + n_hold],
        "test": ids[n_train + n_hold :],
    }


def synthesize_dataset(
    out: Path | str,
    patients: int = 20,
    layout: str = "nifti",
    seed: int = 0,
    views: Sequence[str] = VIEWS,
    with_sequence: bool = True,
    progress: bool = True,
    workers: int = 1,
    overwrite: bool = False,
) -> SynthSummary:
    """Write `patients` phantom patients as a CAMUS tree under `out` and return a summary.

    The same (seed, patient index) always gives the same patient, whatever `workers` is.
    """
    root = Path(out)
    views = tuple(views)
    _check_args(patients, layout, seed, views, workers)
    _prepare(root, overwrite)
    splits = split_patients(patients)
    test = set(splits["test"])
    jobs = [
        (root, layout, seed, i, views, with_sequence, patient_id(i) in test)
        for i in range(1, patients + 1)
    ]
    start = time.perf_counter()
    _write_marker(root, {"complete": False, "layout": layout, "seed": seed, "patients": patients})
    bar = tqdm(total=patients, desc="synth", unit="patient", disable=None if progress else True)
    try:
        if workers == 1:
            for job in jobs:
                _write_patient(job)
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
                for _ in pool.map(_write_patient, jobs):
                    bar.update()
    finally:
        bar.close()
    if layout == "nifti":
        write_split_files(root, splits)
    seconds = time.perf_counter() - start
    files = [p for p in root.rglob("*") if p.is_file() and p.name != MARKER]
    summary = SynthSummary(
        root=str(root), layout=layout, patients=patients, seed=seed, views=views,
        with_sequence=with_sequence, splits={k: len(v) for k, v in splits.items()},
        files=len(files), bytes=sum(p.stat().st_size for p in files), seconds=seconds,
        workers=workers,
    )  # fmt: skip
    _write_marker(root, {"complete": True, **summary.to_dict(), "split_ids": splits})
    logger.info("wrote %d phantom patients (%s) to %s in %.1f s", patients, layout, root, seconds)
    return summary


def is_synth_tree(root: Path | str) -> bool:
    """True when `root` holds a marker written by `synthesize_dataset`."""
    try:
        data = json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == GENERATOR


def _check_args(
    patients: int, layout: str, seed: int, views: tuple[str, ...], workers: int
) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"synth layout | {layout!r} is unknown. Expected one of {LAYOUTS}.")
    if patients < 1 or patients > 9999:
        raise ConfigError(f"synth patients | {patients}. Expected 1..9999 (patientNNNN ids).")
    if seed < 0:
        raise ConfigError(f"synth seed | {seed}. Expected an integer >= 0.")
    if workers < 1:
        raise ConfigError(f"synth workers | {workers}. Expected an integer >= 1.")
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise ConfigError(f"synth views | {list(views)}. Expected a non-empty subset of {VIEWS}.")


def _prepare(root: Path, overwrite: bool) -> None:
    """Refuse a non-empty foreign folder; clear what a previous synth run wrote."""
    if root.exists() and not root.is_dir():
        raise DataError(
            f"synth output {root} | exists and is not a folder. Hint: pick another --out."
        )
    if root.is_dir() and any(root.iterdir()):
        if is_synth_tree(root):
            for name in _OWNED:
                shutil.rmtree(root / name, ignore_errors=True)
            logger.info("replacing the previous synthetic tree in %s", root)
        elif not overwrite:
            raise DataError(
                f"synth output {root} | folder is not empty and holds no {MARKER} (not a previous "
                "synthetic tree). Expected an empty or new folder. Hint: pick another --out, or "
                "pass --overwrite to write into it anyway (existing files are kept)."
            )
        else:
            logger.warning("writing into non-empty folder %s (existing files are kept)", root)
    root.mkdir(parents=True, exist_ok=True)


def _write_marker(root: Path, fields: dict[str, object]) -> None:
    data = {"generator": GENERATOR, "version": __version__, **fields}
    tmp = root / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / MARKER)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


def _write_patient(job: tuple[Path, str, int, int, tuple[str, ...], bool, bool]) -> str:
    """Generate one patient and write its views (runs in a worker process when workers > 1)."""
    root, layout, seed, index, views, with_sequence, is_test = job
    subset = "testing" if is_test and layout == "mhd" else "training"
    for rec in synth_patient(seed, index, views, with_sequence).values():
        write_view(root, layout, rec, subset=subset)
    return patient_id(index)
