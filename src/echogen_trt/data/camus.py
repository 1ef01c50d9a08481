"""Read CAMUS patient views from either public layout into `ViewRecord`s in display order.

Both releases are supported (docs/reference.md section 1):

- "mhd": the 2019 challenge tree, ``training/`` and ``testing/`` of MetaImage .mhd/.raw pairs.
  SimpleITK returns display order; frames carry a singleton third axis that is squeezed.
- "nifti": the 2023 ``database_nifti/`` tree. nibabel returns (W, H[, T]): transposed here so the
  fan apex is at the top, exactly like the MetaImage frames.

Spacing always comes from the file header. Nothing is ever silently replaced by zeros (the
reference code did that for missing files): a missing file, an unreadable or truncated one, a
mask value outside 0..3 or an image/mask size mismatch raises `DataError` naming the patient and
the file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from echogen_trt.artifacts.medical_image import read_medical
from echogen_trt.artifacts.preprocess import check_mask_values
from echogen_trt.data.camus_write import MHD_SUBSETS, NIFTI_DIR, patient_dir
from echogen_trt.data.records import ViewRecord
from echogen_trt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

VIEWS = ("2CH", "4CH")
_PATIENT_RE = re.compile(r"^patient\d+$")


def detect_layout(root: Path) -> str:
    """ "nifti" when root holds database_nifti/, "mhd" when it holds training/ or testing/."""
    root = Path(root)
    has_nifti = (root / NIFTI_DIR).is_dir()
    has_mhd = any((root / s).is_dir() for s in MHD_SUBSETS)
    if has_nifti and has_mhd:
        logger.warning("%s holds both CAMUS layouts; reading the NIfTI one (database_nifti/)", root)
    if has_nifti:
        return "nifti"
    if has_mhd:
        return "mhd"
    if not root.is_dir():
        raise DataError(
            f"CAMUS root {root} | does not exist or is not a folder. "
            "Hint: pass the folder that holds database_nifti/ or training/."
        )
    found = sorted(p.name for p in root.iterdir())[:8]
    hint = "pass the folder that holds database_nifti/ (2023) or training/ and testing/ (2019)"
    if any(_PATIENT_RE.match(name) for name in found):
        hint = f"{root} holds patient folders itself; pass its parent folder instead"
    raise DataError(
        f"CAMUS root {root} | no known layout. Expected database_nifti/ (2023 NIfTI release) or "
        f"training/ and testing/ (2019 MetaImage release), got {found or 'an empty folder'}. "
        f"Hint: {hint}."
    )


def list_patients(root: Path, subset: str | None = None) -> list[str]:
    """Sorted patient ids in the tree.

    `subset` ("training" or "testing") selects a 2019 folder; None lists every patient. The 2023
    layout has one flat folder, so only None is accepted there (use `splits` for its groups).
    """
    root = Path(root)
    layout = detect_layout(root)
    if layout == "nifti":
        if subset is not None:
            raise ConfigError(
                f"subset {subset!r} | not part of the NIfTI layout (one database_nifti/ folder). "
                "Expected None. Hint: use splits.official_split(root) for its groups."
            )
        folders = [root / NIFTI_DIR]
    elif subset is None:
        folders = [root / s for s in MHD_SUBSETS]
    elif subset in MHD_SUBSETS:
        folders = [root / subset]
    else:
        raise ConfigError(f"subset {subset!r} | unknown. Expected None or one of {MHD_SUBSETS}.")
    return sorted(
        p.name
        for folder in folders
        if folder.is_dir()
        for p in folder.iterdir()
        if p.is_dir() and _PATIENT_RE.match(p.name)
    )


def read_view(
    root: Path,
    patient: str,
    view: str = "4CH",
    *,
    with_sequence: bool = False,
    layout: str | None = None,
) -> ViewRecord:
    """Read one patient view: ED/ES images and masks, spacing, Info cfg and optionally the sequence.

    Masks are None only where the 2019 release withholds them (testing/ without _gt files).
    """
    root = Path(root)
    layout = layout or detect_layout(root)
    if view not in VIEWS:
        raise ConfigError(f"view {view!r} | unknown. Expected one of {VIEWS}.")
    folder, masks_optional = _find_patient(root, layout, patient)
    stem = folder / f"{patient}_{view}"
    ext = ".mhd" if layout == "mhd" else ".nii.gz"
    ed, spacing = _read_frames(Path(f"{stem}_ED{ext}"), patient, ndim=2)
    es, _ = _read_frames(Path(f"{stem}_ES{ext}"), patient, ndim=2)
    _check_shape(es, ed.shape, Path(f"{stem}_ES{ext}"), patient)
    masks: list[np.ndarray | None] = []
    for phase in ("ED", "ES"):
        path = Path(f"{stem}_{phase}_gt{ext}")
        withheld = masks_optional and not path.exists()
        masks.append(None if withheld else _read_mask(path, patient, ed.shape, ndim=2))
    info = parse_info(folder / f"Info_{view}.cfg", patient)
    rec = ViewRecord(patient, view, ed, es, masks[0], masks[1], spacing, info)
    if with_sequence:
        _read_sequences(rec, stem, layout)
    return rec


def parse_info(path: Path, patient: str = "") -> dict[str, str]:
    """Info_<view>.cfg as a dict of strings; accepts both releases' key sets (and any others)."""
    who = f"patient {patient}, " if patient else ""
    if not path.is_file():
        raise DataError(f"{who}file {path} | missing. Hint: check the CAMUS tree is complete.")
    info: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise DataError(
                f"{who}file {path} | line {n} is not 'Key: value'. Got {line.strip()!r}."
            )
        info[key.strip()] = value.strip()
    return info


def _find_patient(root: Path, layout: str, patient: str) -> tuple[Path, bool]:
    """The patient folder, and whether its masks may be absent (2019 testing/)."""
    if layout == "nifti":
        candidates = [(patient_dir(root, layout, patient), False)]
    elif layout == "mhd":
        candidates = [(patient_dir(root, layout, patient, s), s == "testing") for s in MHD_SUBSETS]
    else:
        raise ConfigError(f"layout {layout!r} | unknown. Expected 'mhd' or 'nifti'.")
    for folder, optional in candidates:
        if folder.is_dir():
            return folder, optional
    where = " or ".join(str(c[0]) for c in candidates)
    raise DataError(
        f"patient {patient} | folder missing. Expected {where}. "
        f"Hint: list the available ids with camus.list_patients({str(root)!r})."
    )


def _read_sequences(rec: ViewRecord, stem: Path, layout: str) -> None:
    """Attach the ED->ES sequence (and, for 2023, its masks) to `rec`."""
    name = "sequence" if layout == "mhd" else "half_sequence"
    ext = ".mhd" if layout == "mhd" else ".nii.gz"
    path = Path(f"{stem}_{name}{ext}")
    seq, _ = _read_frames(path, rec.patient, ndim=3)
    _check_shape(seq[0], rec.ed.shape, path, rec.patient)
    rec.sequence = seq
    gt_path = Path(f"{stem}_{name}_gt{ext}")
    if layout == "nifti":
        rec.sequence_gt = _read_mask(gt_path, rec.patient, rec.ed.shape, ndim=3)
        if rec.sequence_gt.shape[0] != seq.shape[0]:
            raise DataError(
                f"patient {rec.patient}, file {gt_path} | {rec.sequence_gt.shape[0]} mask frames. "
                f"Expected {seq.shape[0]}, as in {path.name}."
            )


def _read_mask(path: Path, patient: str, shape: tuple[int, ...], ndim: int) -> np.ndarray:
    mask, _ = _read_frames(path, patient, ndim=ndim)
    _check_shape(mask if ndim == 2 else mask[0], shape, path, patient)
    check_mask_values(mask, f"patient {patient}, file {path}")
    return mask


def _check_shape(array: np.ndarray, shape: tuple[int, ...], path: Path, patient: str) -> None:
    if array.shape != shape:
        raise DataError(
            f"patient {patient}, file {path} | size {array.shape} (H, W) does not match the ED "
            f"image. Expected {shape}."
        )


def _read_frames(path: Path, patient: str, ndim: int) -> tuple[np.ndarray, tuple[float, float]]:
    """A uint8 array in display order ((H, W) or (T, H, W)) and the (row, col) spacing."""
    if not path.is_file():
        raise DataError(
            f"patient {patient}, file {path} | missing. Hint: check the CAMUS tree is complete."
        )
    try:
        array, spacing = read_medical(path)
    except DataError as err:
        raise DataError(f"patient {patient}, {err}") from err
    except Exception as err:  # each reader library has its own exception types
        raise DataError(
            f"patient {patient}, file {path} | unreadable ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}). "
            "Hint: the file is corrupt or truncated; re-extract it from the CAMUS archive."
        ) from err
    if ndim == 2 and array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != ndim:
        raise DataError(
            f"patient {patient}, file {path} | {array.ndim}-D array {array.shape}. "
            f"Expected {ndim}-D ({'(H, W)' if ndim == 2 else '(T, H, W)'})."
        )
    if not all(s > 0 for s in spacing):
        raise DataError(f"patient {patient}, file {path} | spacing {spacing} is not positive.")
    return _to_uint8(array, path, patient), spacing


def _to_uint8(array: np.ndarray, path: Path, patient: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.size and (
        not np.all(np.isfinite(array))
        or array.min() < 0
        or array.max() > 255
        or not np.all(np.equal(np.mod(array, 1), 0))
    ):
        raise DataError(
            f"patient {patient}, file {path} | dtype {array.dtype} with values outside the "
            "integers 0..255. Expected 8-bit CAMUS data."
        )
    return np.ascontiguousarray(array.astype(np.uint8))
