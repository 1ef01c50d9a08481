"""Bad data never turns into zeros: each case raises DataError naming the patient and the file."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from echogen_trt.data import camus
from echogen_trt.data.camus_write import write_view
from echogen_trt.errors import DataError


def _one(tmp_path: Path, layout: str, record_factory, **changes) -> Path:
    rec = record_factory("patient0005", shape=(20, 30), frames=2)
    for name, value in changes.items():
        setattr(rec, name, value)
    write_view(tmp_path, layout, rec)
    sub = "training" if layout == "mhd" else "database_nifti"
    return tmp_path / sub / "patient0005"


@pytest.mark.parametrize("layout", ["mhd", "nifti"])
def test_missing_mask_file(tmp_path: Path, layout: str, record_factory) -> None:
    folder = _one(tmp_path, layout, record_factory)
    ext = ".mhd" if layout == "mhd" else ".nii.gz"
    (folder / f"patient0005_4CH_ED_gt{ext}").unlink()
    with pytest.raises(DataError, match=rf"patient patient0005, file .*_4CH_ED_gt{ext} \| missing"):
        camus.read_view(tmp_path, "patient0005")


def test_missing_raw_and_truncated_raw(tmp_path: Path, record_factory) -> None:
    folder = _one(tmp_path, "mhd", record_factory)
    raw = folder / "patient0005_4CH_ES.raw"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(
        DataError,
        match=r"patient0005, file .*_4CH_ES\.raw \| truncated\. "
        r"Expected 600 bytes .* got 100",
    ):
        camus.read_view(tmp_path, "patient0005")
    raw.unlink()
    with pytest.raises(DataError, match=r"patient0005, file .*ES\.mhd \| its data file .* missing"):
        camus.read_view(tmp_path, "patient0005")


@pytest.mark.parametrize("layout", ["mhd", "nifti"])
def test_corrupt_file_is_unreadable(tmp_path: Path, layout: str, record_factory) -> None:
    folder = _one(tmp_path, layout, record_factory)
    name = "patient0005_4CH_ED.mhd" if layout == "mhd" else "patient0005_4CH_ED.nii.gz"
    (folder / name).write_bytes(b"\x00garbage\xff" * 20)
    with pytest.raises(DataError, match=rf"patient0005, file .*{name} \| unreadable"):
        camus.read_view(tmp_path, "patient0005")


@pytest.mark.parametrize("layout", ["mhd", "nifti"])
def test_mask_value_outside_labels(tmp_path: Path, layout: str, record_factory) -> None:
    mask = np.zeros((20, 30), np.uint8)
    mask[3, 4] = 5
    _one(tmp_path, layout, record_factory, es_gt=mask)
    with pytest.raises(DataError, match=r"ES_gt\..* \| mask values \[5\] outside 0\.\.3"):
        camus.read_view(tmp_path, "patient0005")


@pytest.mark.parametrize("layout", ["mhd", "nifti"])
def test_image_mask_size_mismatch(tmp_path: Path, layout: str, record_factory) -> None:
    _one(tmp_path, layout, record_factory, ed_gt=np.zeros((20, 31), np.uint8))
    with pytest.raises(DataError, match=r"ED_gt\..* \| size \(20, 31\) .* Expected \(20, 30\)"):
        camus.read_view(tmp_path, "patient0005")


def test_sequence_errors(tmp_path: Path, record_factory) -> None:
    folder = _one(tmp_path, "nifti", record_factory)
    camus.read_view(tmp_path, "patient0005")  # the sequence is only read on request
    short = np.zeros((30, 20, 1), np.uint8)  # one mask frame for a two-frame sequence
    nib.save(nib.Nifti1Image(short, np.eye(4)), folder / "patient0005_4CH_half_sequence_gt.nii.gz")
    with pytest.raises(DataError, match=r"half_sequence_gt\.nii\.gz \| 1 mask frames\. Expected 2"):
        camus.read_view(tmp_path, "patient0005", with_sequence=True)
    (folder / "patient0005_4CH_half_sequence.nii.gz").unlink()
    with pytest.raises(DataError, match=r"half_sequence\.nii\.gz \| missing"):
        camus.read_view(tmp_path, "patient0005", with_sequence=True)


def test_non_integer_image_values(tmp_path: Path, record_factory) -> None:
    folder = _one(tmp_path, "nifti", record_factory)
    frame = np.full((30, 20), 0.5, np.float32)
    nib.save(nib.Nifti1Image(frame, np.eye(4)), folder / "patient0005_4CH_ES.nii.gz")
    with pytest.raises(DataError, match=r"ES\.nii\.gz \| dtype float32 with values outside"):
        camus.read_view(tmp_path, "patient0005")
    nib.save(nib.Nifti1Image(frame * 0 + 7, np.eye(4)), folder / "patient0005_4CH_ES.nii.gz")
    assert camus.read_view(tmp_path, "patient0005").es.max() == 7  # integral floats are fine


def test_bad_info_cfg(tmp_path: Path, record_factory) -> None:
    folder = _one(tmp_path, "mhd", record_factory)
    (folder / "Info_4CH.cfg").write_text("ED: 1\nthis line has no separator\n")
    with pytest.raises(DataError, match=r"Info_4CH\.cfg \| line 2 is not 'Key: value'"):
        camus.read_view(tmp_path, "patient0005")
    (folder / "Info_4CH.cfg").unlink()
    with pytest.raises(DataError, match=r"patient0005, file .*Info_4CH\.cfg \| missing"):
        camus.read_view(tmp_path, "patient0005")
