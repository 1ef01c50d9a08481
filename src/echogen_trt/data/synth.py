"""Write a complete synthetic CAMUS tree of phantom patients, in either public layout.

CAMUS cannot be downloaded here, so this tree is what the tests, the demo and the benchmarks run
on. Patients are `patient0001..patientNNNN`; the last ~10 % are the test group and the ~10 % before
them the validation group (nifti: `database_split/` files; mhd: the test group goes to `testing/`,
with its masks kept - synthetic data has nothing to withhold).

synth never replaces or deletes a file it did not write. The `synth.json` marker at the root
records exactly what a run writes (patient folders, the file names in each, the split files), and
is written before the first patient so that an interrupted run is covered too. A rerun into the
same folder deletes only those recorded files; everything else is left alone, and a file or
patient folder the run would have to replace or share is refused before anything is touched.
Only an empty (or new) folder or a previous synth output is written into unless `overwrite=True`,
which also allows a non-empty folder whose files do not collide with the phantom ones.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from echogen_trt import __version__
from echogen_trt.data.anatomy import VIEWS
from echogen_trt.data.camus_write import (
    LAYOUTS,
    MHD_SUBSETS,
    NIFTI_DIR,
    SPLIT_DIR,
    SPLIT_FILES,
    patient_dir,
    write_split_files,
    write_view,
)
from echogen_trt.data.phantom import patient_id, synth_patient
from echogen_trt.errors import ConfigError, DataError, InternalError
from echogen_trt.fileio import (
    ensure_dir,
    exclusive_folder,
    remove_stale_temps,
    write_text_atomic,
)

logger = logging.getLogger(__name__)

MARKER = "synth.json"
GENERATOR = "echogen-trt synth"
_PATIENT = "{patient}"  # placeholder for the patient id in the recorded file names
_TOP = (NIFTI_DIR, *MHD_SUBSETS)  # the folders that hold patient folders
_DIR_RE = re.compile(rf"^(?:{'|'.join(_TOP)})/patient\d{{4}}$")
_NAME_RE = re.compile(r"^(?:\{patient\}|[A-Za-z0-9])[A-Za-z0-9_.{}]*$")
_TEMP_DIR_RE = re.compile(r"^\.tmp-[a-z0-9_]{8}$")  # tempfile.TemporaryDirectory(prefix=".tmp-")
_OLD_TEMP_RE = re.compile(r"^\.[A-Za-z0-9_.]+\.\d+\.tmp$")  # text temps of versions <= 0.1.0
_SPLIT_PATHS = tuple(f"{SPLIT_DIR}/{name}" for name in SPLIT_FILES.values())


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


@dataclass(frozen=True)
class Written:
    """Exactly what one synth run writes, as paths relative to the root (the marker's record).

    `dirs` are the patient folders, `names` the file names inside each (with "{patient}" for the
    id; the same in every folder) and `files` the other files (split lists). A rerun deletes
    these and nothing else.
    """

    dirs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def patient_files(self, folder: str) -> list[str]:
        """The recorded files of one patient folder, relative to the root."""
        patient = folder.rsplit("/", 1)[-1]
        return [f"{folder}/{name.replace(_PATIENT, patient)}" for name in self.names]

    def paths(self) -> list[str]:
        """Every recorded file, relative to the root (the marker itself not included)."""
        return [f for d in self.dirs for f in self.patient_files(d)] + list(self.files)

    def to_json(self) -> dict[str, list[str]]:
        return {"dirs": list(self.dirs), "names": list(self.names), "files": list(self.files)}

    @classmethod
    def from_json(cls, data: Any, marker: Path) -> Written:
        """Parse a marker's record, refusing anything that could point outside a synth tree."""
        ok = isinstance(data, dict) and all(
            isinstance(data.get(k), list) and all(isinstance(v, str) for v in data[k])
            for k in ("dirs", "names", "files")
        )
        if not ok or not (
            all(_DIR_RE.match(d) for d in data["dirs"])
            and all(_NAME_RE.match(n) for n in data["names"])
            and all(f in _SPLIT_PATHS for f in data["files"])
        ):
            raise DataError(
                f"{marker} | its record of written files is malformed. Expected patient folders "
                f"under {_TOP}, plain file names and {SPLIT_DIR} files. Hint: choose another "
                "--out (synth deletes only files a valid marker records)."
            )
        return cls(tuple(data["dirs"]), tuple(data["names"]), tuple(data["files"]))


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

    The same (seed, patient index) always gives the same patient, whatever `workers` is. Raises
    DataError, before touching anything, when a file synth did not write would be replaced.
    """
    root = Path(out)
    views = tuple(views)
    _check_args(patients, layout, seed, views, workers)
    splits = split_patients(patients)
    plan = plan_files(layout, splits, views, with_sequence)
    if not root.exists():
        ensure_dir(root, "synth output")  # to lock it; an empty new folder is all a refusal leaves
    if not root.is_dir():
        _prepare(root, plan, overwrite)  # refuses a file in the way
    with exclusive_folder(root, "synth output"):  # a concurrent run would delete our files
        return _synthesize(root, plan, splits, overwrite, layout, seed, patients, views,
                           with_sequence, workers, progress)  # fmt: skip


def _synthesize(
    root: Path, plan: Written, splits: dict[str, list[str]], overwrite: bool, layout: str,
    seed: int, patients: int, views: tuple[str, ...], with_sequence: bool, workers: int,
    progress: bool,
) -> SynthSummary:  # fmt: skip
    mixed = _prepare(root, plan, overwrite)
    test = set(splits["test"])
    jobs = [
        (root, layout, seed, i, views, with_sequence, patient_id(i) in test)
        for i in range(1, patients + 1)
    ]
    start = time.perf_counter()
    fields = {"layout": layout, "seed": seed, "patients": patients, "mixed": mixed}
    _write_marker(root, {"complete": False, **fields, "written": plan.to_json()})
    _run_jobs(jobs, workers, progress)
    if layout == "nifti":
        write_split_files(root, splits)
    seconds = time.perf_counter() - start
    sizes = [(root / f).stat().st_size for f in plan.paths()]
    summary = SynthSummary(
        root=str(root), layout=layout, patients=patients, seed=seed, views=views,
        with_sequence=with_sequence, splits={k: len(v) for k, v in splits.items()},
        files=len(sizes), bytes=sum(sizes), seconds=seconds, workers=workers,
    )  # fmt: skip
    _write_marker(
        root,
        {"complete": True, **summary.to_dict(), "mixed": mixed, "split_ids": splits,
         "written": plan.to_json()},
    )  # fmt: skip
    logger.info("wrote %d phantom patients (%s) to %s in %.1f s", patients, layout, root, seconds)
    return summary


def plan_files(
    layout: str, splits: dict[str, list[str]], views: Sequence[str], with_sequence: bool
) -> Written:
    """The files a run will write, named as `camus_write.write_view` names them.

    `_write_patient` checks every folder it writes against this plan, so the two cannot drift.
    """
    test = set(splits["test"])
    ids = [p for key in ("train", "valid", "test") for p in splits[key]]
    dirs = tuple(
        patient_dir(Path(), layout, p, "testing" if p in test and layout == "mhd" else "training")
        .as_posix()
        for p in ids
    )  # fmt: skip
    exts: tuple[str, ...]
    seq: tuple[str, ...]
    if layout == "mhd":
        exts, seq = (".mhd", ".raw"), ("_sequence",)
    else:
        exts, seq = (".nii.gz",), ("_half_sequence", "_half_sequence_gt")
    names: list[str] = []
    for view in views:
        suffixes = ["_ED", "_ED_gt", "_ES", "_ES_gt", *(seq if with_sequence else ())]
        names += [f"{_PATIENT}_{view}{s}{e}" for s in suffixes for e in exts]
        names.append(f"Info_{view}.cfg")
    files = _SPLIT_PATHS if layout == "nifti" else ()
    return Written(dirs, tuple(sorted(names)), files)


def is_synth_tree(root: Path | str) -> bool:
    """True when `root` holds a marker written by `synthesize_dataset` into a folder that held
    nothing else (a tree written with `overwrite=True` next to other data is mixed, not synth)."""
    data = _read_marker(Path(root))
    return data is not None and not data.get("mixed", False)


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


def _read_marker(root: Path) -> dict[str, Any] | None:
    """The marker's fields when `root` holds one written by synth, else None."""
    try:
        data = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR else None


def _prepare(root: Path, plan: Written, overwrite: bool) -> bool:
    """Check, then delete what the previous synth run recorded; True when other data stays.

    Every refusal happens before the first deletion, so a refused run changes nothing.
    """
    if root.exists() and not root.is_dir():
        raise DataError(
            f"synth output {root} | exists and is not a folder. Hint: pick another --out."
        )
    marker = _read_marker(root) if root.is_dir() else None
    previous = Written()
    if marker is not None and "written" in marker:
        previous = Written.from_json(marker["written"], root / MARKER)
    elif marker is not None:
        logger.warning("%s predates the record of written files; nothing is deleted", MARKER)
    if marker is None and root.is_dir() and any(root.iterdir()) and not overwrite:
        raise DataError(
            f"synth output {root} | folder is not empty and holds no {MARKER} (not a previous "
            "synthetic tree). Expected an empty or new folder. Hint: pick another --out, or "
            "pass --overwrite to write beside the existing files (none is ever replaced)."
        )
    if marker is not None:
        _remove_leftovers(root, previous)
    owned = set(previous.paths()) | ({MARKER} if marker is not None else set())
    _refuse_conflicts(root, plan, owned, legacy=marker is not None and "written" not in marker)
    _delete_recorded(root, previous)
    ensure_dir(root, "synth output")
    return any(p.is_file() and p.name != MARKER for p in root.rglob("*"))


def _remove_leftovers(root: Path, previous: Written) -> None:
    """Delete the temporary files and folders a killed synth run left where it was writing
    (its recorded patient folders, the split folder, the root), so a rerun can complete."""
    removed = remove_stale_temps(root, [MARKER])
    removed += remove_stale_temps(root / SPLIT_DIR, SPLIT_FILES.values())
    for folder in (root / d for d in previous.dirs):
        if not folder.is_dir() or folder.is_symlink():
            continue
        removed += remove_stale_temps(folder)
        for entry in folder.iterdir():
            if entry.is_symlink():
                continue
            if entry.is_dir() and _TEMP_DIR_RE.match(entry.name):
                shutil.rmtree(entry)  # camus_write's scratch folder (tempfile, ".tmp-")
                removed.append(entry)
            elif entry.is_file() and _OLD_TEMP_RE.match(entry.name):
                entry.unlink()
                removed.append(entry)
    if removed:
        logger.info("removed %d temporary file(s) of an interrupted synth run", len(removed))


def _refuse_conflicts(root: Path, plan: Written, owned: set[str], legacy: bool) -> None:
    """DataError naming the existing files a run would replace or mix its patients with."""
    clash = [f for f in [*plan.paths(), MARKER] if f not in owned and _exists(root / f)]
    clash += [f for f in owned if (root / f).is_dir()]  # a recorded file turned into a folder
    for folder in plan.dirs:
        if (root / folder).is_dir():
            clash += [
                f"{folder}/{e.name}"
                for e in (root / folder).iterdir()
                if f"{folder}/{e.name}" not in owned
            ]
        elif _exists(root / folder):
            clash.append(folder)
    clash += [t for t in (*_TOP, SPLIT_DIR) if (root / t).is_file()]
    if not clash:
        return
    clash = sorted(set(clash))
    why = (
        f" ({MARKER} was written by an older echogen-trt that recorded no files)" if legacy else ""
    )
    shown = ", ".join(clash[:5]) + (", ..." if len(clash) > 5 else "")
    raise DataError(
        f"synth output {root} | {len(clash)} existing file(s) that synth did not write would be "
        f"replaced or share a patient folder with phantom files{why}, first {clash[0]}: {shown}. "
        "Expected only files recorded by a previous synth run at those paths. Nothing was "
        "changed. Hint: choose another --out (synth never replaces files it did not write)."
    )


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _delete_recorded(root: Path, previous: Written) -> None:
    """Delete the files of the previous record, then whichever of its folders are left empty."""
    for rel in previous.paths():
        path = root / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
    kept = []
    folders = [*previous.dirs, *{Path(d).parent.as_posix() for d in previous.dirs}]
    for folder in [*folders, SPLIT_DIR if previous.files else ""]:
        path = root / folder
        if folder and path.is_dir():
            try:
                path.rmdir()
            except OSError:  # not empty: it holds files synth did not write
                kept.append(folder)
    if previous.dirs or previous.files:
        logger.info("removed the previous synthetic files in %s", root)
    if kept:
        logger.warning("kept %d folder(s) holding other files in %s: %s", len(kept), root, kept)


def _write_marker(root: Path, fields: dict[str, object]) -> None:
    data = {"generator": GENERATOR, "version": __version__, **fields}
    write_text_atomic(root / MARKER, json.dumps(data, indent=2) + "\n")


def _run_jobs(jobs: list[Any], workers: int, progress: bool) -> None:
    bar = tqdm(total=len(jobs), desc="synth", unit="patient", disable=None if progress else True)
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


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


def _write_patient(job: tuple[Path, str, int, int, tuple[str, ...], bool, bool]) -> str:
    """Generate one patient and write its views (runs in a worker process when workers > 1)."""
    root, layout, seed, index, views, with_sequence, is_test = job
    subset = "testing" if is_test and layout == "mhd" else "training"
    patient = patient_id(index)
    for rec in synth_patient(seed, index, views, with_sequence).values():
        write_view(root, layout, rec, subset=subset)
    folder = patient_dir(root, layout, patient, subset)
    expected = plan_files(layout, {"train": [patient], "valid": [], "test": []}, views,
                          with_sequence).names  # fmt: skip
    got = sorted(p.name for p in folder.iterdir())
    if got != sorted(n.replace(_PATIENT, patient) for n in expected):
        raise InternalError(f"{folder} | holds {got}, not the planned {list(expected)}.")
    return patient
