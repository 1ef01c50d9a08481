"""Round trips through both CAMUS layouts, and orientation checks independent of the writer."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from echogen_trt.data import camus
from echogen_trt.data.camus_write import write_split_files, write_view
from echogen_trt.errors import ConfigError, DataError

LAYOUT_FILES = {
    "mhd": [
        "training/patient0007/patient0007_4CH_ED.mhd",
        "training/patient0007/patient0007_4CH_ED.raw",
        "training/patient0007/patient0007_4CH_ES_gt.mhd",
        "training/patient0007/patient0007_4CH_ES_gt.raw",
        "training/patient0007/patient0007_4CH_sequence.mhd",
        "training/patient0007/Info_4CH.cfg",
    ],
    "nifti": [
        "database_nifti/patient0007/patient0007_4CH_ED.nii.gz",
        "database_nifti/patient0007/patient0007_4CH_ES_gt.nii.gz",
        "database_nifti/patient0007/patient0007_4CH_half_sequence.nii.gz",
        "database_nifti/patient0007/patient0007_4CH_half_sequence_gt.nii.gz",
        "database_nifti/patient0007/Info_4CH.cfg",
    ],
}


@pytest.mark.parametrize("layout", ["mhd", "nifti"])
def test_round_trip_is_exact(tmp_path: Path, layout: str, record_factory) -> None:
    rec = record_factory("patient0007", shape=(60, 80), seed=4, spacing=(0.25, 0.4), frames=4)
    write_view(tmp_path, layout, rec)

    for rel in LAYOUT_FILES[layout]:
        assert (tmp_path / rel).is_file(), rel
    assert not list(tmp_path.rglob(".tmp*")), "temporary files left behind"
    assert camus.detect_layout(tmp_path) == layout
    assert camus.list_patients(tmp_path) == ["patient0007"]

    got = camus.read_view(tmp_path, "patient0007", with_sequence=True)
    for name in ("ed", "es", "ed_gt", "es_gt", "sequence"):
        want, have = getattr(rec, name), getattr(got, name)
        assert have.dtype == np.uint8 and have.shape == want.shape, name
        np.testing.assert_array_equal(have, want, err_msg=name)
    assert got.spacing == pytest.approx(rec.spacing)
    assert (got.patient, got.view) == ("patient0007", "4CH")
    if layout == "nifti":
        np.testing.assert_array_equal(got.sequence_gt, rec.sequence_gt)
    else:
        assert got.sequence_gt is None  # the 2019 release has no sequence masks


def test_info_keys_follow_each_release(tmp_path: Path, record_factory) -> None:
    rec = record_factory(frames=5)
    write_view(tmp_path / "a", "mhd", rec)
    write_view(tmp_path / "b", "nifti", rec)
    mhd_text = (tmp_path / "a/training/patient0001/Info_4CH.cfg").read_text()
    mhd_keys = [line.split(":")[0] for line in mhd_text.splitlines()]
    assert mhd_keys[:9] == [
        "ED",
        "ES",
        "NbFrame",
        "Sex",
        "Age",
        "ImageQuality",
        "LVedv",
        "LVesv",
        "LVef",
    ]
    nifti = camus.read_view(tmp_path / "b", "patient0001").info
    assert list(nifti)[:8] == [
        "ED",
        "ES",
        "NbFrame",
        "Sex",
        "Age",
        "ImageQuality",
        "EF",
        "FrameRate",
    ]
    assert nifti["EF"] == rec.info["LVef"]  # the same quantity under the 2023 key
    assert (nifti["ED"], nifti["ES"], nifti["NbFrame"]) == ("1", "5", "5")
    mhd = camus.read_view(tmp_path / "a", "patient0001").info
    assert {k: mhd[k] for k in ("Sex", "Age", "ImageQuality", "LVef")} == {
        k: rec.info[k] for k in ("Sex", "Age", "ImageQuality", "LVef")
    }


def test_nifti_file_is_stored_transposed_with_zooms(tmp_path: Path, record_factory) -> None:
    rec = record_factory(shape=(60, 80), spacing=(0.25, 0.4))
    write_view(tmp_path, "nifti", rec)
    img = nib.load(tmp_path / "database_nifti/patient0001/patient0001_4CH_ED.nii.gz")
    stored = np.asanyarray(img.dataobj)
    assert stored.shape == (80, 60) and stored.dtype == np.uint8  # (W, H), like the release
    np.testing.assert_array_equal(stored, rec.ed.T)
    assert img.header.get_zooms() == pytest.approx((0.4, 0.25))
    seq = nib.load(tmp_path / "database_nifti/patient0001/patient0001_4CH_half_sequence.nii.gz")
    assert seq.shape == (80, 60, 3)


def test_reader_puts_apex_on_top_for_a_hand_made_nifti(tmp_path: Path) -> None:
    """Built with nibabel alone, so the writer and the reader cannot be wrong together."""
    h, w = 40, 70
    display = np.zeros((h, w), np.uint8)
    display[0:4, w // 2 - 2 : w // 2 + 2] = 200  # fan apex: top row, middle
    display[h - 5 :, 3:10] = 90  # something at the bottom-left
    folder = tmp_path / "database_nifti/patient0042"
    folder.mkdir(parents=True)
    on_disk = display.T.copy()  # (W, H): what nibabel returns for the real release
    for name in ("ED", "ES"):
        image = nib.Nifti1Image(on_disk, np.diag([0.3, 0.5, 1.0, 1.0]))
        image.header.set_zooms((0.3, 0.5))
        nib.save(image, folder / f"patient0042_4CH_{name}.nii.gz")
        gt = nib.Nifti1Image((on_disk > 0).astype(np.uint8), np.eye(4))
        gt.header.set_zooms((0.3, 0.5))
        nib.save(gt, folder / f"patient0042_4CH_{name}_gt.nii.gz")
    (folder / "Info_4CH.cfg").write_text("ED: 1\nES: 2\nNbFrame: 2\n")

    rec = camus.read_view(tmp_path, "patient0042")
    assert rec.ed.shape == (h, w)
    assert rec.ed[0, w // 2] == 200 and rec.ed[h - 1, 5] == 90
    assert rec.ed[:4].max() == 200 and rec.ed[h - 4 :, w // 2].max() == 0  # apex on top
    assert rec.spacing == pytest.approx((0.5, 0.3))  # (row, col) from the zooms


def test_reader_keeps_display_order_for_a_hand_made_mhd(tmp_path: Path) -> None:
    """SimpleITK from an explicit (1, H, W) array, the 2019 release's frame shape."""
    display = np.zeros((30, 50), np.uint8)
    display[0, 25] = 7
    display[29, 0] = 3
    folder = tmp_path / "training/patient0003"
    folder.mkdir(parents=True)
    for name in ("ED", "ES", "ED_gt", "ES_gt"):
        image = sitk.GetImageFromArray(
            display[np.newaxis] if "gt" not in name else (display > 0).astype(np.uint8)[np.newaxis]
        )
        image.SetSpacing((0.6, 0.2, 1.0))
        sitk.WriteImage(image, str(folder / f"patient0003_4CH_{name}.mhd"))
    (folder / "Info_4CH.cfg").write_text("ED: 1\nES: 9\nNbFrame: 9\nLVef: 55\n")
    rec = camus.read_view(tmp_path, "patient0003")
    np.testing.assert_array_equal(rec.ed, display)
    assert rec.spacing == pytest.approx((0.2, 0.6))
    assert rec.info == {"ED": "1", "ES": "9", "NbFrame": "9", "LVef": "55"}


def test_testing_subset_without_masks(tmp_path: Path, record_factory) -> None:
    rec = record_factory("patient0451")
    rec.ed_gt = rec.es_gt = None
    write_view(tmp_path, "mhd", rec, subset="testing")
    write_view(tmp_path, "mhd", record_factory("patient0002"), subset="training")
    assert camus.list_patients(tmp_path, "testing") == ["patient0451"]
    assert camus.list_patients(tmp_path, "training") == ["patient0002"]
    assert camus.list_patients(tmp_path) == ["patient0002", "patient0451"]
    got = camus.read_view(tmp_path, "patient0451")
    assert got.ed_gt is None and got.es_gt is None
    np.testing.assert_array_equal(got.ed, rec.ed)


def test_split_files_are_one_patient_a_line(tmp_path: Path) -> None:
    write_split_files(
        tmp_path, {"train": ["patient0002", "patient0001"], "valid": ["patient0003"], "test": []}
    )
    folder = tmp_path / "database_split"
    assert (folder / "subgroup_training.txt").read_text() == "patient0002\npatient0001\n"
    assert (folder / "subgroup_validation.txt").read_text() == "patient0003\n"
    assert (folder / "subgroup_testing.txt").read_text() == ""
    with pytest.raises(ConfigError, match="missing keys \\['test'\\]"):
        write_split_files(tmp_path, {"train": [], "valid": []})


def test_detect_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        camus.detect_layout(tmp_path / "nope")
    (tmp_path / "patient0001").mkdir()
    with pytest.raises(DataError, match=r"no known layout.*pass its parent folder"):
        camus.detect_layout(tmp_path)


def test_writer_and_reader_reject_bad_arguments(tmp_path: Path, record_factory) -> None:
    rec = record_factory()
    with pytest.raises(ConfigError, match="layout 'png' \\| unknown"):
        write_view(tmp_path, "png", rec)
    with pytest.raises(ConfigError, match="subset 'validation' \\| unknown"):
        write_view(tmp_path, "mhd", rec, subset="validation")
    rec.ed = rec.ed.astype(np.float32)
    with pytest.raises(ConfigError, match=r"dtype float32\. Expected uint8"):
        write_view(tmp_path, "nifti", rec)
    write_view(tmp_path, "nifti", record_factory())
    with pytest.raises(ConfigError, match="view '3CH' \\| unknown"):
        camus.read_view(tmp_path, "patient0001", view="3CH")
    with pytest.raises(ConfigError, match="not part of the NIfTI layout"):
        camus.list_patients(tmp_path, "training")
    with pytest.raises(DataError, match="patient0099 \\| folder missing"):
        camus.read_view(tmp_path, "patient0099")


def test_interrupted_write_leaves_no_file(tmp_path: Path, record_factory, monkeypatch) -> None:
    def crash(image, path) -> None:
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(nib, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        write_view(tmp_path, "nifti", record_factory())
    folder = tmp_path / "database_nifti/patient0001"
    assert list(folder.iterdir()) == []  # neither the target nor the temporary file


def test_both_layouts_prefer_nifti(tmp_path: Path, record_factory, caplog) -> None:
    write_view(tmp_path, "mhd", record_factory("patient0001"))
    write_view(tmp_path, "nifti", record_factory("patient0002"))
    assert camus.detect_layout(tmp_path) == "nifti"
    assert "both CAMUS layouts" in caplog.text
    assert camus.list_patients(tmp_path) == ["patient0002"]
    assert camus.read_view(tmp_path, "patient0001", layout="mhd").patient == "patient0001"
