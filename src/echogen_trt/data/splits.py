"""Train / valid / test patient splits: the reference code's seeded split and the official files.

- "reference": what the paper's code did (``data_loader_camus.py``): the sorted ``training/``
  patients shuffled with ``random.Random(123)``; valid = the first int(int(N * 0.95) * 0.02),
  train = the rest up to int(N * 0.95), test = the remainder. N = 450 gives 8 / 419 / 23.
- "official": the 2023 release's ``database_split/subgroup_{training,validation,testing}.txt``
  (400 / 50 / 50).
- a path: a JSON file ``{"train": [...], "valid": [...], "test": [...]}`` or a folder holding
  the three subgroup files.

Splits are dicts with the keys "train", "valid" and "test", each a list of patient ids.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from echogen_trt.data.camus import detect_layout, list_patients
from echogen_trt.data.camus_write import SPLIT_DIR, SPLIT_FILES
from echogen_trt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "valid", "test")
REFERENCE_SEED = 123
REFERENCE_TRAIN_RATIO = 0.95
REFERENCE_VALID_RATIO = 0.02
_ALIASES = {"training": "train", "validation": "valid", "testing": "test"}


def reference_split(patients: list[str]) -> dict[str, list[str]]:
    """The reference code's split of `patients`, reproduced exactly (order included)."""
    order = sorted(patients)
    random.Random(REFERENCE_SEED).shuffle(order)
    n_train_end = int(len(order) * REFERENCE_TRAIN_RATIO)
    n_valid = int(n_train_end * REFERENCE_VALID_RATIO)
    return {
        "train": order[n_valid:n_train_end],
        "valid": order[:n_valid],
        "test": order[n_train_end:],
    }


def official_split(root: Path) -> dict[str, list[str]]:
    """The 2023 release's split files under root/database_split/."""
    return _split_from_folder(Path(root) / SPLIT_DIR)


def split_from_file(path: Path) -> dict[str, list[str]]:
    """A user split: a JSON file with train/valid/test lists, or a folder of subgroup files."""
    path = Path(path)
    if path.is_dir():
        return _split_from_folder(path)
    if not path.is_file():
        raise DataError(
            f"split file {path} | missing. Expected a JSON file or a folder of "
            f"{', '.join(SPLIT_FILES.values())}."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"split file {path} | not valid JSON ({err}).") from err
    if not isinstance(raw, dict):
        raise DataError(
            f"split file {path} | top level is {type(raw).__name__}. "
            'Expected an object like {"train": [...], "valid": [...], "test": [...]}.'
        )
    split = {_ALIASES.get(k, k): v for k, v in raw.items()}
    missing = [k for k in SPLIT_NAMES if k not in split]
    bad = [k for k in SPLIT_NAMES if k in split and not _is_id_list(split[k])]
    if missing or bad:
        raise DataError(
            f"split file {path} | keys missing {missing} or not lists of patient ids {bad}. "
            f"Expected lists under {list(SPLIT_NAMES)}, got keys {sorted(raw)}."
        )
    return _checked({k: list(split[k]) for k in SPLIT_NAMES}, str(path))


def resolve_split(root: Path, source: str = "auto") -> dict[str, list[str]]:
    """The split to use for a tree.

    "auto" takes the official files when root/database_split/ has them, else the reference
    split (of the training/ patients in the 2019 layout, of every patient in the 2023 one). Some
    but not all of the files is a DataError: falling back would silently change the held-out
    patients (a model trained on the official split would be judged on its training patients).
    """
    root = Path(root)
    if source == "auto":
        present = [n for n in SPLIT_FILES.values() if (root / SPLIT_DIR / n).is_file()]
        if present and len(present) < len(SPLIT_FILES):
            missing = [n for n in SPLIT_FILES.values() if n not in present]
            raise DataError(
                f"split files {root / SPLIT_DIR} | {', '.join(missing)} missing while "
                f"{', '.join(present)} present: a partial official split. Expected all of "
                f"{', '.join(SPLIT_FILES.values())}. Hint: restore the missing file, or choose "
                "--split-source reference explicitly (its held-out patients differ)."
            )
        source = "official" if present else "reference"
        logger.info("split source for %s: %s", root, source)
    if source == "official":
        return official_split(root)
    if source == "reference":
        subset = "training" if detect_layout(root) == "mhd" else None
        patients = list_patients(root, subset)
        if not patients:
            raise DataError(
                f"CAMUS root {root} | no patient folders for the reference split. "
                "Expected patientNNNN/ folders. Hint: check the root and that it was extracted."
            )
        return reference_split(patients)
    if Path(source).exists():
        return split_from_file(Path(source))
    raise ConfigError(
        f"split source {source!r} | unknown. Expected 'auto', 'reference', 'official' or the "
        "path of an existing split file or folder."
    )


def _split_from_folder(folder: Path) -> dict[str, list[str]]:
    split: dict[str, list[str]] = {}
    for key, name in SPLIT_FILES.items():
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"split file {path} | missing. Expected {', '.join(SPLIT_FILES.values())} in "
                f"{folder}. Hint: use split source 'reference', or write them with "
                "camus_write.write_split_files."
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        split[key] = [line.strip() for line in text.splitlines() if line.strip()]
    return _checked(split, str(folder))


def _is_id_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _checked(split: dict[str, list[str]], source: str) -> dict[str, list[str]]:
    """Refuse a patient listed twice: it would leak between train and test."""
    seen: dict[str, str] = {}
    for key in SPLIT_NAMES:
        for patient in split[key]:
            if patient in seen:
                raise DataError(
                    f"split {source} | patient {patient} is in both {seen[patient]!r} and "
                    f"{key!r}. Expected disjoint groups."
                )
            seen[patient] = key
    return split


def check_disjoint(
    fit: tuple[str, Sequence[str]], judge: tuple[str, Sequence[str]], source: str
) -> None:
    """DataError naming the overlap when patients that train or calibrate (`fit`, as
    (name, ids)) also judge (`judge`): the score would be measured on data the model has seen."""
    common = sorted(set(fit[1]) & set(judge[1]))
    if common:
        shown = ", ".join(common[:5]) + (f", ... ({len(common)} in all)" if len(common) > 5 else "")
        raise DataError(
            f"{source} | the {fit[0]} and {judge[0]} patients overlap: {shown}. Expected "
            f"disjoint sets, so that {judge[0]} judges unseen patients. Hint: fix the split "
            "(database_split/ files or --split-source)."
        )
