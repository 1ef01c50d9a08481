"""Write `ViewRecord`s into a CAMUS tree, in either public layout, exactly as the releases do.

The phantom dataset and the loader tests go through this writer, so the readers in `camus` are
exercised on the same file formats as the real data:

- "mhd" (2019 challenge): ``root/<subset>/patientNNNN/patientNNNN_4CH_ED.mhd`` + ``.raw``
  (MetaImage, uncompressed, a singleton third axis like the release), ``_gt`` masks,
  ``_sequence.mhd`` and ``Info_4CH.cfg``.
- "nifti" (2023 re-release): ``root/database_nifti/patientNNNN/patientNNNN_4CH_ED.nii.gz``, ``_gt``,
  ``_half_sequence[_gt].nii.gz`` and ``Info_4CH.cfg``. Arrays are stored (W, H[, T]), i.e.
  transposed relative to display order, with the pixel spacing in the header zooms - the
  orientation trap of the real release.

Every file is written under a temporary name and moved into place with `os.replace`, so an
interrupted run never leaves a half-written file under a real name.
"""

from __future__ import annotations

from pathlib import Path

from echogen_trt.artifacts.medical_image import write_mhd, write_nifti
from echogen_trt.data.records import ViewRecord
from echogen_trt.errors import ConfigError
from echogen_trt.fileio import write_text_atomic

LAYOUTS = ("mhd", "nifti")
MHD_SUBSETS = ("training", "testing")
NIFTI_DIR = "database_nifti"
SPLIT_DIR = "database_split"
SPLIT_FILES = {
    "train": "subgroup_training.txt",
    "valid": "subgroup_validation.txt",
    "test": "subgroup_testing.txt",
}
INFO_KEYS = {
    "mhd": ("ED", "ES", "NbFrame", "Sex", "Age", "ImageQuality", "LVedv", "LVesv", "LVef"),
    "nifti": ("ED", "ES", "NbFrame", "Sex", "Age", "ImageQuality", "EF", "FrameRate"),
}
# The same quantity under each release's key, so a record read from one layout writes to the other.
_INFO_ALIASES = {"EF": "LVef", "LVef": "EF"}


def patient_dir(root: Path, layout: str, patient: str, subset: str = "training") -> Path:
    """The folder holding one patient's files in a given layout."""
    if layout == "mhd":
        return Path(root) / subset / patient
    return Path(root) / NIFTI_DIR / patient


def write_view(root: Path, layout: str, rec: ViewRecord, subset: str = "training") -> None:
    """Write one patient view (images, masks, sequence, Info cfg) into a CAMUS tree.

    `subset` places the patient under training/ or testing/ in the "mhd" layout and is ignored
    for "nifti" (one flat database_nifti/ folder). Masks that are None are not written, as in the
    2019 testing/ folder where they are withheld.
    """
    _check_layout(layout)
    if layout == "mhd" and subset not in MHD_SUBSETS:
        raise ConfigError(
            f"subset {subset!r} | unknown for the mhd layout. Expected one of {MHD_SUBSETS}."
        )
    folder = patient_dir(Path(root), layout, rec.patient, subset)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{rec.patient}_{rec.view}"
    write = write_mhd if layout == "mhd" else write_nifti
    for phase, image, mask in (("ED", rec.ed, rec.ed_gt), ("ES", rec.es, rec.es_gt)):
        write(folder / f"{stem}_{phase}", image, rec.spacing)
        if mask is not None:
            write(folder / f"{stem}_{phase}_gt", mask, rec.spacing)
    if rec.sequence is not None:
        seq_name = "sequence" if layout == "mhd" else "half_sequence"
        write(folder / f"{stem}_{seq_name}", rec.sequence, rec.spacing)
        if layout == "nifti" and rec.sequence_gt is not None:
            write(folder / f"{stem}_{seq_name}_gt", rec.sequence_gt, rec.spacing)
    _write_text(folder / f"Info_{rec.view}.cfg", info_text(rec, layout))


def write_split_files(root: Path, splits: dict[str, list[str]]) -> None:
    """Write database_split/subgroup_{training,validation,testing}.txt, one patient a line.

    `splits` uses the keys "train", "valid" and "test" (as returned by `splits.resolve_split`).
    """
    missing = sorted(set(SPLIT_FILES) - set(splits))
    if missing:
        raise ConfigError(
            f"splits | missing keys {missing}. Expected keys {sorted(SPLIT_FILES)}, "
            f"got {sorted(splits)}."
        )
    folder = Path(root) / SPLIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in SPLIT_FILES.items():
        _write_text(folder / name, "".join(f"{p}\n" for p in splits[key]))


def info_text(rec: ViewRecord, layout: str) -> str:
    """The Info_<view>.cfg text: `Key: value` lines, the layout's keys first, in release order.

    ED, ES and NbFrame are derived from the sequence when the record does not carry them; keys
    the record lacks are left out rather than invented; extra keys are kept after the standard
    ones.
    """
    info = dict(rec.info)
    for key, alias in _INFO_ALIASES.items():
        if key not in info and alias in info:
            info[key] = info[alias]
    if rec.sequence is not None:
        n_frames = str(rec.sequence.shape[0])
        info.setdefault("ED", "1")
        info.setdefault("ES", n_frames)
        info.setdefault("NbFrame", n_frames)
    keys = INFO_KEYS[layout]
    extra = [k for k in rec.info if k not in keys and k not in _INFO_ALIASES]
    return "".join(f"{k}: {info[k]}\n" for k in (*keys, *extra) if k in info)


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"layout {layout!r} | unknown. Expected one of {LAYOUTS}.")


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)
