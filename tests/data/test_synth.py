"""Synthetic CAMUS trees: both layouts read back by `camus`, splits, the guards that keep synth
from replacing or deleting files it did not write, the contact sheet and `echogen-trt synth`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from echogen_trt.cli import cli
from echogen_trt.data import camus, splits
from echogen_trt.data.phantom import synth_patient
from echogen_trt.data.preview import contact_sheet
from echogen_trt.data.synth import (
    MARKER,
    is_synth_tree,
    split_patients,
    synthesize_dataset,
)
from echogen_trt.errors import ConfigError, DataError

FAST = {"views": ("4CH",), "with_sequence": False, "progress": False}


def _assert_same(rec, ref) -> None:
    for name in ("ed", "es", "ed_gt", "es_gt"):
        np.testing.assert_array_equal(getattr(rec, name), getattr(ref, name), err_msg=name)
    assert rec.spacing == pytest.approx(ref.spacing, rel=1e-5)
    for key in ("ImageQuality", "Sex", "Age", "ES", "NbFrame"):
        assert rec.info[key] == ref.info[key]


@pytest.mark.parametrize("layout", ["nifti", "mhd"])
def test_tree_reads_back_identically(tmp_path: Path, layout: str) -> None:
    summary = synthesize_dataset(tmp_path / "t", patients=3, layout=layout, seed=4, **FAST)
    root = Path(summary.root)
    assert camus.detect_layout(root) == layout and is_synth_tree(root)
    assert summary.patients == 3 and summary.splits == {"train": 1, "valid": 1, "test": 1}
    assert summary.files == len([p for p in root.rglob("*") if p.is_file()]) - 1  # minus marker
    ids = camus.list_patients(root)
    assert ids == ["patient0001", "patient0002", "patient0003"]
    for i, patient in enumerate(ids, start=1):
        _assert_same(
            camus.read_view(root, patient, "4CH"), synth_patient(4, i, ("4CH",), False)["4CH"]
        )
    if layout == "mhd":  # the test group sits in testing/, masks included
        assert camus.list_patients(root, "testing") == ["patient0003"]
    else:
        assert splits.official_split(root) == split_patients(3)
    marker = json.loads((root / "synth.json").read_text())
    assert marker["complete"] and marker["seed"] == 4 and marker["layout"] == layout


def test_sequence_round_trip_in_nifti(tmp_path: Path) -> None:
    synthesize_dataset(tmp_path, patients=1, seed=2, views=("2CH",), progress=False)
    rec = camus.read_view(tmp_path, "patient0001", "2CH", with_sequence=True)
    ref = synth_patient(2, 1, ("2CH",))["2CH"]
    np.testing.assert_array_equal(rec.sequence, ref.sequence)
    np.testing.assert_array_equal(rec.sequence_gt, ref.sequence_gt)
    assert rec.info["NbFrame"] == str(ref.sequence.shape[0])


def test_split_is_80_10_10_and_sequential() -> None:
    s = split_patients(20)
    assert [len(s[k]) for k in ("train", "valid", "test")] == [16, 2, 2]
    assert s["test"] == ["patient0019", "patient0020"]
    assert split_patients(2) == {"train": ["patient0001", "patient0002"], "valid": [], "test": []}


def test_refuses_a_foreign_folder_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"folder is not empty and holds no synth\.json"):
        synthesize_dataset(tmp_path, patients=1, **FAST)
    assert not (tmp_path / "database_nifti").exists()
    synthesize_dataset(tmp_path, patients=1, overwrite=True, **FAST)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert camus.list_patients(tmp_path) == ["patient0001"]


def test_rerun_replaces_a_previous_synth_tree(tmp_path: Path) -> None:
    synthesize_dataset(tmp_path, patients=3, layout="mhd", seed=1, views=("4CH",), progress=False)
    assert camus.read_view(tmp_path, "patient0003", with_sequence=True).sequence is not None
    synthesize_dataset(tmp_path, patients=1, layout="nifti", seed=5, **FAST)
    assert camus.detect_layout(tmp_path) == "nifti"
    assert not (tmp_path / "training").exists() and not (tmp_path / "testing").exists()
    assert camus.list_patients(tmp_path) == ["patient0001"]
    _assert_same(
        camus.read_view(tmp_path, "patient0001"), synth_patient(5, 1, ("4CH",), False)["4CH"]
    )
    synthesize_dataset(tmp_path, patients=2, layout="nifti", seed=6, **FAST)  # same layout again
    _assert_same(
        camus.read_view(tmp_path, "patient0001"), synth_patient(6, 1, ("4CH",), False)["4CH"]
    )
    marker = json.loads((tmp_path / MARKER).read_text())
    assert marker["written"]["dirs"] == ["database_nifti/patient0001", "database_nifti/patient0002"]
    assert len(marker["written"]["files"]) == 3 and is_synth_tree(tmp_path)
    assert marker["files"] == len([p for p in tmp_path.rglob("*") if p.is_file()]) - 1


def _patient_dir(layout: str, patient: str) -> str:
    return f"{'database_nifti' if layout == 'nifti' else 'training'}/{patient}"


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("layout", "real"),
    [
        ("nifti", "database_nifti/patient0001/patient0001_4CH_ED.nii.gz"),
        ("mhd", "training/patient0001/patient0001_4CH_ED.raw"),
    ],
)
def test_overwrite_never_replaces_a_real_file(tmp_path: Path, layout: str, real: str) -> None:
    (tmp_path / real).parent.mkdir(parents=True)
    (tmp_path / real).write_bytes(b"real CAMUS bytes")
    (tmp_path / "database_nifti" / "patient0450").mkdir(parents=True, exist_ok=True)
    (tmp_path / "database_nifti" / "patient0450" / "Info_4CH.cfg").write_text("ED: 1\n")
    before = _tree_bytes(tmp_path)
    args = ["synth", "--out", str(tmp_path), "--patients", "2", "--layout", layout]
    result = CliRunner().invoke(cli, [*args, "--views", "4CH", "--no-sequence", "--overwrite"])
    assert result.exit_code == 1 and isinstance(result.exception, DataError)
    assert "1 existing file(s) that synth did not write" in str(result.exception)
    assert f"first {real}" in str(result.exception) and "another --out" in str(result.exception)
    assert _tree_bytes(tmp_path) == before  # nothing written, nothing replaced
    assert not (tmp_path / MARKER).exists()


def test_overwrite_writes_beside_other_files_and_a_rerun_keeps_them(tmp_path: Path) -> None:
    real = tmp_path / "database_nifti" / "patient0450" / "patient0450_4CH_ED.nii.gz"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"real")
    (tmp_path / "notes.txt").write_text("mine")
    synthesize_dataset(tmp_path, patients=3, overwrite=True, **FAST)
    assert camus.list_patients(tmp_path)[:3] == ["patient0001", "patient0002", "patient0003"]
    assert not is_synth_tree(tmp_path)  # a mixed folder is not a purely synthetic tree
    synthesize_dataset(tmp_path, patients=1, **FAST)  # rerun: deletes only what it recorded
    assert camus.list_patients(tmp_path) == ["patient0001", "patient0450"]
    assert real.read_bytes() == b"real" and (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / MARKER).read_text())["mixed"] is True


@pytest.mark.parametrize("layout", ["nifti", "mhd"])
def test_rerun_keeps_patient_folders_synth_did_not_write(tmp_path: Path, layout: str) -> None:
    synthesize_dataset(tmp_path, patients=3, layout=layout, **FAST)
    top = "database_nifti" if layout == "nifti" else "testing"
    added = {
        f"{top}/patient0450/patient0450_4CH_ED.nii.gz": b"real 450",
        f"{top}/patient0003/README.txt": b"the user's own note",  # in a folder the rerun drops
        "database_split/subgroup_extra.txt": b"patient0450\n",
    }
    for rel, data in added.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    synthesize_dataset(tmp_path, patients=1, layout=layout, seed=3, **FAST)
    assert {rel: (tmp_path / rel).read_bytes() for rel in added} == added
    assert sorted(p.name for p in (tmp_path / top / "patient0003").iterdir()) == ["README.txt"]
    ref = synth_patient(3, 1, ("4CH",), False)["4CH"]
    _assert_same(camus.read_view(tmp_path, "patient0001"), ref)
    assert not (tmp_path / _patient_dir(layout, "patient0002")).exists()


@pytest.mark.parametrize("layout", ["nifti", "mhd"])
def test_rerun_refuses_a_patient_folder_holding_other_files(tmp_path: Path, layout: str) -> None:
    synthesize_dataset(tmp_path, patients=3, layout=layout, **FAST)
    extra = tmp_path / _patient_dir(layout, "patient0001") / "patient0001_4CH_ED_edited.png"
    extra.write_bytes(b"hand-edited")
    before = _tree_bytes(tmp_path)
    with pytest.raises(DataError, match=r"1 existing file\(s\).*first \S+/patient0001_4CH_ED_edit"):
        synthesize_dataset(tmp_path, patients=2, layout=layout, **FAST)
    assert _tree_bytes(tmp_path) == before  # refused before deleting anything


def test_markers_that_record_no_files_or_bad_paths_delete_nothing(tmp_path: Path) -> None:
    synthesize_dataset(tmp_path, patients=1, **FAST)
    marker = tmp_path / MARKER
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "written": {**data["written"], "dirs": ["../x"]}}))
    with pytest.raises(DataError, match=r"synth\.json \| its record of written files is malformed"):
        synthesize_dataset(tmp_path, patients=1, **FAST)
    marker.write_text(json.dumps({k: v for k, v in data.items() if k != "written"}))  # old marker
    before = _tree_bytes(tmp_path)
    with pytest.raises(DataError, match=r"older echogen-trt that recorded no files"):
        synthesize_dataset(tmp_path, patients=1, **FAST)
    assert _tree_bytes(tmp_path) == before
    other = tmp_path / "other" / MARKER  # somebody else's synth.json is not replaced either
    other.parent.mkdir()
    other.write_text('{"mine": true}')
    with pytest.raises(DataError, match=r"1 existing file\(s\).*first synth\.json"):
        synthesize_dataset(other.parent, patients=1, overwrite=True, **FAST)
    assert sorted(other.parent.iterdir()) == [other] and other.read_text() == '{"mine": true}'


def test_workers_give_the_same_tree(tmp_path: Path) -> None:
    synthesize_dataset(tmp_path / "a", patients=2, seed=9, workers=2, **FAST)
    for i, patient in enumerate(("patient0001", "patient0002"), start=1):
        _assert_same(
            camus.read_view(tmp_path / "a", patient), synth_patient(9, i, ("4CH",), False)["4CH"]
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "png"}, r"synth layout \| 'png' is unknown"),
        ({"patients": 0}, r"synth patients \| 0\. Expected 1\.\.9999"),
        ({"workers": 0}, r"synth workers \| 0"),
        ({"views": ("4CH", "PLAX")}, r"synth views \| \['4CH', 'PLAX'\]"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    options = {**FAST, **kwargs}
    with pytest.raises(ConfigError, match=message):
        synthesize_dataset(tmp_path, **options)


def test_contact_sheet_from_records_and_from_a_tree(tmp_path: Path) -> None:
    recs = [synth_patient(1, i, ("4CH",), False)["4CH"] for i in (1, 2, 3)]
    out = contact_sheet(recs, tmp_path / "sheet.png", n=3, size=64, columns=2)
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 64, 2 * 2 * 64, 3)
    assert sheet[:64, 64:128].any() and not sheet[64:, 128:].any()  # 3 pairs, one blank cell
    mask_cell = sheet[20:64, :64].reshape(-1, 3)
    assert {tuple(c) for c in mask_cell} & {(60, 60, 230), (60, 200, 60), (230, 120, 40)}
    synthesize_dataset(tmp_path / "tree", patients=2, **FAST)
    tree_sheet = cv2.imread(str(contact_sheet(tmp_path / "tree", tmp_path / "t.png", n=4, size=64)))
    assert tree_sheet.shape == (64, 4 * 64, 3)
    with pytest.raises(ConfigError, match=r"contact sheet \| n=0"):
        contact_sheet(recs, tmp_path / "x.png", n=0)
    (tmp_path / "empty" / "database_nifti").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty \| no patient folders found"):
        contact_sheet(tmp_path / "empty", tmp_path / "y.png")


def test_cli_synth_json_and_preview(tmp_path: Path) -> None:
    out, png = tmp_path / "d", tmp_path / "p.png"
    args = ["synth", "--out", str(out), "--patients", "2", "--layout", "mhd", "--seed", "3"]
    args += ["--views", "4ch", "--no-sequence", "--preview", str(png), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["patients"] == 2 and payload["layout"] == "mhd" and payload["views"] == ["4CH"]
    assert payload["seed"] == 3 and payload["with_sequence"] is False
    assert payload["preview"] == str(png) and cv2.imread(str(png)) is not None
    _assert_same(camus.read_view(out, "patient0002"), synth_patient(3, 2, ("4CH",), False)["4CH"])


def test_cli_synth_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    args = ["synth", "--out", str(tmp_path), "--patients", "1", "--no-sequence"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, DataError)
    assert "not empty" in str(result.exception) and "--overwrite" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_rerun_after_a_kill_cleans_synths_own_leftovers(tmp_path: Path) -> None:
    """kill -9 mid-write leaves camus_write's scratch folder and atomic temps behind; the rerun
    removes exactly those and completes (it used to refuse, blaming the user's --out)."""
    root = tmp_path / "tree"
    synthesize_dataset(root, patients=3, **FAST)
    folder = root / "database_nifti" / "patient0002"
    scratch = folder / ".tmp-k9x_2ab7"  # tempfile.TemporaryDirectory(prefix=".tmp-")
    scratch.mkdir()
    (scratch / "patient0002_4CH_ES.nii.gz").write_bytes(b"\x1f\x8b half")
    leftovers = [
        folder / ".Info_4CH.cfg.0123456789ab.tmp",
        folder / ".Info_4CH.cfg.4242.tmp",  # text temps of 0.1.0
        root / f".{MARKER}.0123456789ab.tmp",
    ]
    for path in leftovers:
        path.write_text("half")
    synthesize_dataset(root, patients=3, **FAST)
    assert not scratch.exists() and not any(p.exists() for p in leftovers)
    assert [p for p in root.rglob(".*")] == []
    assert json.loads((root / MARKER).read_text())["complete"] is True


def test_full_disk_is_one_line_and_leaves_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    import nibabel

    real_save = nibabel.save
    calls = []

    def save(image: object, filename: str) -> None:
        calls.append(filename)
        if len(calls) == 3:  # the disk fills up in the middle of the third file
            Path(filename).write_bytes(b"\x1f\x8b\x08 half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(image, filename)

    monkeypatch.setattr(nibabel, "save", save)
    root = tmp_path / "tree"
    result = CliRunner().invoke(cli, ["synth", "--out", str(root), "--patients", "3",
                                      "--views", "4CH", "--no-sequence"])  # fmt: skip
    assert result.exit_code == 1
    message = str(result.exception)
    assert re.fullmatch(
        r"output .*patient0001_4CH_ES\.nii\.gz \| cannot be written \(No space left on "
        r"device\)\. Hint: free space .*",
        message,
    ), message
    written = sorted(p.name for p in (root / "database_nifti" / "patient0001").iterdir())
    assert written == ["patient0001_4CH_ED.nii.gz", "patient0001_4CH_ED_gt.nii.gz"]
    for name in written:  # whole files only under real names
        nibabel.load(str(root / "database_nifti" / "patient0001" / name)).get_fdata()
    monkeypatch.setattr(nibabel, "save", real_save)
    synthesize_dataset(root, patients=3, **FAST)  # with space again, a rerun completes
    assert is_synth_tree(root)
