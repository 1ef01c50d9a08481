"""Split rules: the reference code's seeded split, the official files, user files, auto choice."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from echogen_trt.data.camus_write import write_split_files, write_view
from echogen_trt.data.splits import (
    official_split,
    reference_split,
    resolve_split,
    split_from_file,
)
from echogen_trt.errors import ConfigError, DataError

CAMUS_TRAINING = [f"patient{i:04d}" for i in range(1, 451)]


def test_reference_split_of_the_450_training_patients() -> None:
    split = reference_split(list(reversed(CAMUS_TRAINING)))  # input order must not matter
    assert [len(split[k]) for k in ("valid", "train", "test")] == [8, 419, 23]
    # Independently, as data_loader_camus.py did it: sorted glob of full paths, shuffled in place.
    paths = sorted(f"/data/camus/training/{p}" for p in CAMUS_TRAINING)
    random.Random(123).shuffle(paths)
    names = [p.rsplit("/", 1)[1] for p in paths]
    num_train = int(450 * 0.95)  # 427
    num_valid = int(num_train * 0.02)  # 8
    assert (num_train, num_valid) == (427, 8)
    assert split["valid"] == names[:num_valid]
    assert split["train"] == names[num_valid:num_train]
    assert split["test"] == names[num_train:]
    groups = [set(split[k]) for k in ("train", "valid", "test")]
    assert set.union(*groups) == set(CAMUS_TRAINING)
    assert sum(len(g) for g in groups) == 450  # disjoint


def test_reference_split_small_trees() -> None:
    split = reference_split(["patient0003", "patient0001", "patient0002", "patient0004"])
    assert len(split["valid"]) == 0 and len(split["train"]) == 3 and len(split["test"]) == 1
    assert reference_split([]) == {"train": [], "valid": [], "test": []}


def _tree(root: Path, layout: str, patients: list[str], record_factory, subset="training"):
    for i, p in enumerate(patients):
        write_view(root, layout, record_factory(p, shape=(12, 10), seed=i, frames=1), subset)


def test_auto_uses_official_files_when_present(tmp_path: Path, record_factory) -> None:
    patients = [f"patient{i:04d}" for i in range(1, 6)]
    _tree(tmp_path, "nifti", patients, record_factory)
    assert resolve_split(tmp_path, "auto") == reference_split(patients)
    official = {"train": patients[:3], "valid": [patients[3]], "test": [patients[4]]}
    write_split_files(tmp_path, official)
    assert official_split(tmp_path) == official
    assert resolve_split(tmp_path) == official
    assert resolve_split(tmp_path, "official") == official
    assert resolve_split(tmp_path, "reference") == reference_split(patients)


def test_reference_on_mhd_uses_training_patients_only(tmp_path: Path, record_factory) -> None:
    _tree(tmp_path, "mhd", ["patient0001", "patient0002", "patient0003"], record_factory)
    _tree(tmp_path, "mhd", ["patient0451", "patient0452"], record_factory, subset="testing")
    split = resolve_split(tmp_path, "auto")
    assert sorted(p for group in split.values() for p in group) == [
        "patient0001",
        "patient0002",
        "patient0003",
    ]
    with pytest.raises(DataError, match=r"subgroup_training\.txt \| missing"):
        resolve_split(tmp_path, "official")


def test_split_from_json_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"training": ["a"], "validation": ["b"], "test": ["c", "d"]}))
    want = {"train": ["a"], "valid": ["b"], "test": ["c", "d"]}
    assert split_from_file(path) == want
    assert resolve_split(tmp_path, str(path)) == want
    write_split_files(tmp_path / "mine", want)
    assert split_from_file(tmp_path / "mine" / "database_split") == want


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level is list"),
        ('{"train": ["a"], "valid": []}', r"keys missing \['test'\]"),
        ('{"train": "a", "valid": [], "test": []}', r"not lists of patient ids \['train'\]"),
        ('{"train": ["a"], "valid": ["a"], "test": []}', "patient a is in both 'train' and"),
    ],
)
def test_bad_split_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "split.json"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        split_from_file(path)


def test_unknown_split_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="split source 'offical' \\| unknown"):
        resolve_split(tmp_path, "offical")
    with pytest.raises(DataError, match="missing"):
        split_from_file(tmp_path / "absent.json")
