"""Mask reading (every format and every way a file can be wrong) and atomic frame writing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_helpers import labels_mask, read_png, write_png

from echogen_trt.errors import BackendUnavailable, InputMismatch, OutputError
from echogen_trt.runtime import io


@pytest.fixture
def mask() -> np.ndarray:
    return labels_mask((40, 56), seed=2)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_read_8bit_images_raw_and_scaled(tmp_path: Path, mask: np.ndarray, suffix: str) -> None:
    for name, stored in (("raw", mask), ("scaled", mask * 85)):
        path = tmp_path / f"{name}{suffix}"
        assert cv2.imwrite(str(path), stored)
        got = io.read_mask(path)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, mask)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_16bit_raw_and_scaled(tmp_path: Path, mask: np.ndarray, suffix: str) -> None:
    for name, stored in (
        ("raw", mask.astype(np.uint16)),
        ("scaled", mask.astype(np.uint16) * 21845),
    ):
        path = tmp_path / f"{name}{suffix}"
        assert cv2.imwrite(str(path), stored)
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
        np.testing.assert_array_equal(io.read_mask(path), mask)


@pytest.mark.parametrize(
    "array",
    [
        lambda m: m,
        lambda m: m.astype(np.int64),
        lambda m: m.astype(np.float32),
        lambda m: m[None],  # (1, H, W) squeezes
        lambda m: (m * 85).astype(np.uint8),
    ],
)
def test_read_npy(tmp_path: Path, mask: np.ndarray, array) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "m.npy", array(mask))
    np.testing.assert_array_equal(io.read_mask(tmp_path / "m.npy"), mask)


def test_read_camus_mhd_and_nifti_in_display_order(tmp_path: Path, mask: np.ndarray) -> None:
    import nibabel as nib
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(mask[None]), str(tmp_path / "p_4CH_ED_gt.mhd"))
    stored = np.ascontiguousarray(mask.T)  # the 2023 release stores (W, H)
    nib.save(nib.Nifti1Image(stored, np.eye(4)), str(tmp_path / "p_4CH_ED_gt.nii.gz"))
    for name in ("p_4CH_ED_gt.mhd", "p_4CH_ED_gt.nii.gz"):
        got = io.read_mask(tmp_path / name)
        assert got.shape == mask.shape, name
        np.testing.assert_array_equal(got, mask)


def test_grey_colour_image_is_accepted(tmp_path: Path, mask: np.ndarray) -> None:
    path = tmp_path / "grey_rgb.png"
    cv2.imwrite(str(path), np.dstack([mask * 85] * 3))
    np.testing.assert_array_equal(io.read_mask(path), mask)


def test_colour_image_is_rejected(tmp_path: Path, mask: np.ndarray) -> None:
    colour = np.dstack([mask, mask, (mask + 1) % 4])
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    with pytest.raises(InputMismatch, match=r"colour\.png \| colour image"):
        io.read_mask(tmp_path / "colour.png")


def test_wrong_values_are_listed(tmp_path: Path, mask: np.ndarray) -> None:
    bad = mask.copy()
    bad[0, 0] = 7
    write_png(tmp_path / "bad.png", bad)
    with pytest.raises(InputMismatch, match=r"bad\.png \| mask values \{0, 1, 2, 3, 7\}"):
        io.read_mask(tmp_path / "bad.png")


def test_an_image_is_not_a_mask(tmp_path: Path) -> None:
    write_png(tmp_path / "echo.png", np.arange(256, dtype=np.uint8).reshape(16, 16))
    with pytest.raises(InputMismatch, match=r"256 distinct.*image rather than a mask"):
        io.read_mask(tmp_path / "echo.png")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.png", b"", "empty file"),
        ("corrupt.png", b"\x89PNG\r\n\x1a\nnot really", "not a decodable image"),
        ("empty.npy", b"", "empty file"),
        ("corrupt.npy", b"\x93NUMPY garbage", "cannot be read"),
        ("corrupt_gt.nii.gz", b"\x1f\x8b\x08 truncated", "cannot be read"),
        (
            "corrupt_gt.mhd",
            b"ObjectType = Image\nElementDataFile = missing.raw\n",
            "cannot be read",
        ),
    ],
)
def test_broken_files(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputMismatch, match=match):
        io.read_mask(tmp_path / name)


@pytest.mark.parametrize(
    ("name", "module"),
    [("p_gt.mhd", "SimpleITK"), ("p_gt.nii.gz", "nibabel"), ("p.nii", "nibabel")],
)
def test_medical_masks_without_the_extra_name_it_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    """The base install leaves SimpleITK and nibabel out (issue 23)."""
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if absent
    (tmp_path / name).write_bytes(b"ObjectType = Image\n")
    with pytest.raises(BackendUnavailable) as info:
        io.read_mask(tmp_path / name)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / name} | ") and "\n" not in message
    assert f"need {module}" in message and "pip install 'echogen-trt[medical]'" in message


def test_missing_path_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputMismatch, match="does not exist"):
        io.read_mask(tmp_path / "nope.png")
    with pytest.raises(InputMismatch, match="is a folder"):
        io.read_mask(tmp_path)


def test_sequences_are_refused(tmp_path: Path, mask: np.ndarray) -> None:
    np.save(tmp_path / "seq.npy", np.stack([mask, mask]))
    with pytest.raises(InputMismatch, match=r"shape \(2, 40, 56\). Expected one 2-D mask"):
        io.read_mask(tmp_path / "seq.npy")


def test_unicode_and_spaces_in_names(tmp_path: Path, mask: np.ndarray) -> None:
    path = write_png(tmp_path / "dossier été" / "cœur 1.png", mask)
    np.testing.assert_array_equal(io.read_mask(path), mask)
    out = io.write_frame(tmp_path / "sortie é" / "écho 1.png", mask * 60)
    np.testing.assert_array_equal(read_png(out), mask * 60)


def test_mask_suffix_and_stem() -> None:
    assert io.mask_suffix("a/p_gt.nii.gz") == ".nii.gz"
    assert io.mask_stem("a/p_gt.nii.gz") == "p_gt"
    assert io.mask_stem("x.y.PNG") == "x.y"
    assert io.mask_suffix("notes.txt") == ""


@pytest.mark.parametrize("suffix", [".png", ".npy"])
def test_write_frame_round_trips_losslessly(tmp_path: Path, suffix: str) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (33, 47), dtype=np.uint8)
    path = io.write_frame(tmp_path / "sub" / f"f{suffix}", frame)
    back = np.load(path) if suffix == ".npy" else cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, frame)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


def test_write_jpeg_is_close(tmp_path: Path) -> None:
    frame = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    path = io.write_frame(tmp_path / "f.jpg", frame)
    back = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert back.shape == frame.shape
    assert np.abs(back.astype(int) - frame).mean() < 2


def test_write_frame_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure between writing and renaming leaves neither the target nor a temp file."""

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputError, match=r"f\.png \| cannot be written \(disk full\)"):
        io.write_frame(tmp_path / "f.png", np.zeros((8, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputMismatch, match=r"unknown frame format '\.gif'"):
        io.write_frame(tmp_path / "f.gif", np.zeros((8, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_overlay_and_panel(mask: np.ndarray) -> None:
    frame = np.full((80, 112), 100, np.uint8)  # twice the mask size: the mask is resized
    over = io.overlay(frame, mask)
    assert over.shape == (80, 112, 3)
    coloured = np.any(over != 100, axis=2)
    big = cv2.resize(mask, (112, 80), interpolation=cv2.INTER_NEAREST)
    assert coloured.any()
    assert not coloured[big == 0].all()  # only contours, not filled
    for label, colour in io.LABEL_COLOURS_BGR.items():
        assert np.any(np.all(over == colour, axis=2)), label
    view = io.panel(frame, mask)
    assert view.shape == (80, 3 * 112, 3)
    np.testing.assert_array_equal(view[:, 112:224, 0], frame)
    np.testing.assert_array_equal(
        view[:, :112][big == 1], [io.LABEL_COLOURS_BGR[1]] * (big == 1).sum()
    )
