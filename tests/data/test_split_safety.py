"""A held-out split that silently changes (issue #22): a partial official split is an error, and
wherever one set of patients trains or calibrates and another judges, the two must be disjoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.data import dataset
from echogen_trt.data.camus_write import SPLIT_DIR, write_split_files, write_view
from echogen_trt.data.splits import resolve_split
from echogen_trt.errors import DataError

PATIENTS = [f"patient{i:04d}" for i in range(1, 6)]
OFFICIAL = {"train": PATIENTS[:3], "valid": [PATIENTS[3]], "test": [PATIENTS[4]]}
LEAKY = {"train": PATIENTS[:3], "valid": [PATIENTS[0]], "test": [PATIENTS[0], PATIENTS[4]]}


@pytest.fixture
def tree(tmp_path: Path, record_factory) -> Path:
    for i, p in enumerate(PATIENTS):
        write_view(tmp_path, "nifti", record_factory(p, shape=(12, 10), seed=i, frames=1))
    write_split_files(tmp_path, OFFICIAL)
    return tmp_path


@pytest.mark.parametrize("missing", ["subgroup_testing.txt", "subgroup_training.txt"])
def test_a_partial_official_split_is_an_error_naming_the_missing_file(
    tree: Path, missing: str
) -> None:
    (tree / SPLIT_DIR / missing).unlink()
    with pytest.raises(DataError, match=f"{missing} missing .*--split-source reference"):
        resolve_split(tree)
    assert resolve_split(tree, "reference")  # chosen explicitly, it is allowed
    with pytest.raises(DataError, match=missing):
        dataset.load_pairs(tree, split="test", size=(16, 16))


def test_int8_calibration_and_gate_patients_must_be_disjoint(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from echogen_trt.export.int8 import _mask_sets

    meta = ModelMeta("ventricle_atrium", (1, 3), (16, 16))
    calib, held = _mask_sets(meta, tree, None, None, "auto")
    assert len(calib) and len(held)
    monkeypatch.setattr(dataset, "resolve_split", lambda root, source: LEAKY)
    with pytest.raises(DataError, match="calibration and held-out patients overlap: patient0001"):
        _mask_sets(meta, tree, None, None, "auto")


def test_train_and_valid_patients_must_be_disjoint(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from echogen_trt.train.config import TrainConfig
    from echogen_trt.train.data_feed import load_data

    cfg = TrainConfig(data=str(tree), image_size=16)
    train, valid = load_data(cfg)
    assert valid is not None and not set(train.patients) & set(valid.patients)
    monkeypatch.setattr(dataset, "resolve_split", lambda root, source: LEAKY)
    with pytest.raises(DataError, match="train and valid patients overlap: patient0001"):
        load_data(cfg)


def test_evaluate_judge_training_and_test_patients_must_be_disjoint(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from echogen_trt.evaluate.protocol import EvalConfig, evaluate_generator

    def never(masks: np.ndarray) -> np.ndarray:
        raise AssertionError("the overlap must be refused before any frame is generated")

    monkeypatch.setattr(dataset, "resolve_split", lambda root, source: LEAKY)
    monkeypatch.setattr("echogen_trt.evaluate.protocol.load_pairs", dataset.load_pairs)
    with pytest.raises(DataError, match="training and test patients overlap: patient0001"):
        evaluate_generator(never, tree, size=(16, 16), kept=(1, 3), config=EvalConfig())
