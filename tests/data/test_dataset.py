"""load_pairs: split selection, label selection per experiment, resizing, bad-patient handling."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from echogen_trt.artifacts.labels import EXPERIMENTS
from echogen_trt.artifacts.preprocess import resize_image, resize_mask
from echogen_trt.data.camus_write import write_split_files, write_view
from echogen_trt.data.dataset import load_pairs
from echogen_trt.errors import ConfigError, DataError

PATIENTS = [f"patient{i:04d}" for i in range(1, 6)]
SPLIT = {"train": PATIENTS[:3], "valid": [PATIENTS[3]], "test": [PATIENTS[4]]}


@pytest.fixture(params=["mhd", "nifti"])
def tree(request, tmp_path: Path, record_factory):
    """Five patients of 60x80 frames with official split files; returns (root, records)."""
    records = {}
    for i, patient in enumerate(PATIENTS):
        records[patient] = record_factory(patient, shape=(60, 80), seed=i, frames=1)
        write_view(tmp_path, request.param, records[patient])
    write_split_files(tmp_path, SPLIT)
    return tmp_path, records


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_pairs_match_the_reference_preprocessing(tree, experiment: str) -> None:
    root, records = tree
    pairs = load_pairs(root, experiment=experiment, split="train", size=(32, 48))
    assert pairs.patients == SPLIT["train"] and pairs.skipped == []
    assert pairs.masks.shape == (3, 32, 48) and pairs.masks.dtype == np.uint8
    assert pairs.images.shape == (3, 32, 48) and pairs.images.dtype == np.float32
    kept = set(EXPERIMENTS[experiment])
    assert set(np.unique(pairs.masks)) == kept | {0}  # every kept label survives, others are gone
    for i, patient in enumerate(pairs.patients):
        rec = records[patient]
        want = resize_mask(rec.ed_gt, (32, 48))
        want[~np.isin(want, list(kept))] = 0
        np.testing.assert_array_equal(pairs.masks[i], want)
        np.testing.assert_array_equal(pairs.images[i] * 255, resize_image(rec.ed, (32, 48)))
    assert (pairs.experiment, pairs.kept, len(pairs)) == (experiment, EXPERIMENTS[experiment], 3)


def test_splits_phase_and_interpolation(tree) -> None:
    root, records = tree
    assert load_pairs(root, split="valid", size=(16, 16)).patients == SPLIT["valid"]
    assert load_pairs(root, split="test", size=(16, 16)).patients == SPLIT["test"]
    every = load_pairs(root, split="all", phase="ES", size=(60, 80), image_interp="area")
    assert every.patients == PATIENTS
    np.testing.assert_array_equal(every.masks[2], records[PATIENTS[2]].es_gt)  # no resize needed
    np.testing.assert_allclose(every.images[2], records[PATIENTS[2]].es / 255.0, atol=1e-7)
    ref = load_pairs(root, split="all", split_source="reference", size=(16, 16))
    assert ref.patients == sorted(ref.patients) and len(ref) == 5


def _break(root: Path) -> dict[str, str]:
    """Damage four patients, one way each; returns patient -> expected reason."""
    layout = "mhd" if (root / "training").is_dir() else "nifti"
    folder = root / ("training" if layout == "mhd" else "database_nifti")
    ext = ".mhd" if layout == "mhd" else ".nii.gz"
    (folder / "patient0001" / f"patient0001_4CH_ED_gt{ext}").unlink()
    bad_image = folder / "patient0002" / f"patient0002_4CH_ED{'.raw' if layout == 'mhd' else ext}"
    bad_image.write_bytes(bad_image.read_bytes()[:50])
    return {"patient0001": "missing", "patient0002": "truncated|unreadable"}


def test_bad_patients_raise_or_are_skipped(tree, record_factory, caplog) -> None:
    root, _ = tree
    layout = "mhd" if (root / "training").is_dir() else "nifti"
    reasons = _break(root)
    bad_values = record_factory("patient0003", shape=(60, 80))
    bad_values.ed_gt[10, 10] = 5
    write_view(root, layout, bad_values)
    bad_size = record_factory("patient0004", shape=(60, 80))
    bad_size.ed_gt = np.zeros((60, 81), np.uint8)
    write_view(root, layout, bad_size)
    reasons |= {"patient0003": r"mask values \[5\]", "patient0004": r"size \(60, 81\)"}

    with pytest.raises(DataError, match=r"patient patient0001, file .* missing"):
        load_pairs(root, split="all", size=(16, 16))
    with caplog.at_level(logging.WARNING, logger="echogen_trt.data.dataset"):
        pairs = load_pairs(root, split="all", size=(16, 16), skip_bad=True)
    assert pairs.patients == ["patient0005"]
    assert [p for p, _ in pairs.skipped] == [
        "patient0001",
        "patient0002",
        "patient0003",
        "patient0004",
    ]
    for patient, reason in pairs.skipped:
        assert patient in reason
        assert re.search(reasons[patient], reason), (patient, reason)
    assert sum("skipping" in r.message for r in caplog.records) == 4
    with pytest.raises(DataError, match="all 3 patients were skipped as bad"):
        load_pairs(root, split="train", size=(16, 16), skip_bad=True)


def test_withheld_masks_are_bad_pairs(tmp_path: Path, record_factory) -> None:
    rec = record_factory("patient0451", shape=(20, 20))
    rec.ed_gt = rec.es_gt = None
    write_view(tmp_path, "mhd", rec, subset="testing")
    write_split_files(tmp_path, {"train": ["patient0451"], "valid": [], "test": []})
    with pytest.raises(DataError, match="ED mask withheld"):
        load_pairs(tmp_path, size=(8, 8))


def test_empty_split_has_a_hint(tmp_path: Path, record_factory) -> None:
    for i in range(3):
        write_view(tmp_path, "nifti", record_factory(f"patient000{i + 1}", shape=(10, 10)))
    with pytest.raises(DataError, match=r"'valid' .* empty.*write_split_files"):
        load_pairs(tmp_path, split="valid", size=(8, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"experiment": "lv"}, r"experiment 'lv' \| unknown"),
        ({"split": "validation"}, r"split 'validation' \| unknown"),
        ({"phase": "MID"}, r"phase 'MID' \| unknown"),
        ({"view": "3CH"}, r"view '3CH' \| unknown"),
        ({"image_interp": "cubic"}, r"image_interp 'cubic' \| unknown"),
        ({"size": (256, 0)}, r"size \(256, 0\) \| invalid"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_pairs(tmp_path, **kwargs)


def test_both_phases_sequence_frames_and_spacings(tmp_path: Path, record_factory) -> None:
    """ "both" gives ED then ES per patient, "seq" the labelled sequence's inner frames (2023
    layout only), and every pair carries its spacing in mm at the loaded size."""
    records = {}
    for i, patient in enumerate(PATIENTS):
        records[patient] = record_factory(patient, shape=(60, 80), seed=i, frames=4)
        write_view(tmp_path / "nifti", "nifti", records[patient])
        write_view(tmp_path / "mhd", "mhd", records[patient])
    for layout in ("nifti", "mhd"):
        write_split_files(tmp_path / layout, SPLIT)
    both = load_pairs(tmp_path / "nifti", split="train", phase="both", size=(30, 40))
    assert both.patients == [p for p in SPLIT["train"] for _ in (0, 1)]
    assert both.phases == ["ED", "ES"] * 3
    rec = records[SPLIT["train"][0]]
    np.testing.assert_array_equal(both.masks[1], resize_mask(rec.es_gt, (30, 40)))
    np.testing.assert_allclose(both.spacings[0], np.array(rec.spacing) * 2)  # half the pixels
    seq = load_pairs(tmp_path / "nifti", split="train", phase="seq", size=(30, 40))
    assert seq.phases == ["seq1", "seq2"] * 3  # 4 frames: the 2 between ED and ES
    np.testing.assert_array_equal(seq.masks[0], resize_mask(rec.sequence_gt[1], (30, 40)))
    assert len(load_pairs(tmp_path / "mhd", split="train", phase="seq", size=(30, 40))) == 0
