"""CAMUS's two file formats (MetaImage .mhd/.raw and NIfTI .nii.gz) read and written in display
order: the one place that knows each format's orientation.

The 2019 release's MetaImage files come back from SimpleITK in display order (apex at the top) with
a singleton third axis on frames; the 2023 NIfTI files are stored (W, H[, T]), transposed, with the
pixel spacing in the header zooms. The data layer's CAMUS reader and writer, the phantom generator
and the runtime's mask reader all go through here. Writes go to a temporary name first and are
moved into place, so an interrupted write never leaves a half-written file under a real name.
"""

from __future__ import annotations

import errno
import importlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.errors import BackendUnavailable, ConfigError, DataError
from echogen_trt.fileio import writing

MEDICAL_EXTRA = "medical"  # SimpleITK + nibabel: left out of the base (edge) install
_FORMATS = {"SimpleITK": "MetaImage (.mhd)", "nibabel": "NIfTI (.nii/.nii.gz)"}
_MET_BYTES = {"MET_UCHAR": 1, "MET_CHAR": 1, "MET_USHORT": 2, "MET_SHORT": 2, "MET_UINT": 4,
              "MET_INT": 4, "MET_FLOAT": 4, "MET_DOUBLE": 8}  # fmt: skip


def lazy_import(name: str, path: str | os.PathLike[str] | None = None) -> Any:
    """Import SimpleITK / nibabel on first use, untyped: both ship partial annotations only.
    Absent (the base install leaves them out): one line naming `path` and the extra."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise BackendUnavailable(
            f"{path if path is not None else name} | {_FORMATS.get(name, name)} files need "
            f"{name}, which the base install leaves out. Expected the {MEDICAL_EXTRA} extra. "
            f"Hint: pip install 'echogen-trt[{MEDICAL_EXTRA}]'."
        ) from err


def read_medical(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """One CAMUS .mhd or .nii(.gz) file in display order (apex at the top) with its (row, col)
    spacing."""
    return _read_mhd(path) if path.suffix == ".mhd" else _read_nifti(path)


def _read_mhd(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    sitk = lazy_import("SimpleITK", path)
    _check_raw_size(path)
    image = sitk.ReadImage(str(path))
    spacing = image.GetSpacing()  # (x = col, y = row[, z])
    return sitk.GetArrayFromImage(image), (float(spacing[1]), float(spacing[0]))


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    nib = lazy_import("nibabel", path)
    image = nib.load(str(path))
    stored = np.asanyarray(image.dataobj)  # (W, H[, T]), the release's on-disk orientation
    zooms = image.header.get_zooms()  # (col, row[, t])
    display = stored.T if stored.ndim == 2 else stored.transpose(2, 1, 0)
    return display, (float(zooms[1]), float(zooms[0]))


def _check_raw_size(path: Path) -> None:
    """Catch a truncated .raw before ITK does (its message blames a missing .mhd)."""
    header: dict[str, str] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
    raw_name = header.get("ElementDataFile", "")
    if header.get("CompressedData", "False") != "False" or raw_name in ("", "LOCAL"):
        return
    raw = path.parent / raw_name
    if not raw.is_file():
        raise DataError(f"file {path} | its data file {raw} is missing.")
    size = np.prod([int(d) for d in header.get("DimSize", "0").split()])
    channels = int(header.get("ElementNumberOfChannels", "1"))
    expected = int(size) * channels * _MET_BYTES.get(header.get("ElementType", ""), 0)
    if expected and raw.stat().st_size < expected:
        raise DataError(
            f"file {raw} | truncated. Expected {expected} bytes for DimSize "
            f"{header.get('DimSize')}, got {raw.stat().st_size}. Hint: re-extract the file."
        )


def _as_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype != np.uint8:
        raise ConfigError(
            f"{path.name} | array dtype {array.dtype}. Expected uint8 (CAMUS images and masks "
            "are 8-bit). Hint: convert with np.clip(...).astype(np.uint8) before writing."
        )
    return np.ascontiguousarray(array)


@contextmanager
def _temp_dir(folder: Path) -> Iterator[Path]:
    """A scratch folder beside the target, so `os.replace` stays on one filesystem."""
    with tempfile.TemporaryDirectory(prefix=".tmp-", dir=folder) as tmp:
        yield Path(tmp)


def write_mhd(base: Path, array: np.ndarray, spacing: tuple[float, float]) -> None:
    """A .mhd/.raw pair; 2-D frames get a singleton third axis, as in the 2019 release."""
    sitk = lazy_import("SimpleITK", base.with_name(f"{base.name}.mhd"))
    data = _as_uint8(array, base)
    if data.ndim == 2:
        data = data[np.newaxis]
    image = sitk.GetImageFromArray(data)  # numpy (T, H, W) -> ITK size (W, H, T)
    image.SetSpacing((float(spacing[1]), float(spacing[0]), 1.0))
    target = base.with_name(f"{base.name}.mhd")
    with writing(target), _temp_dir(base.parent) as tmp:
        try:
            sitk.WriteImage(image, str(tmp / target.name), False)
        except RuntimeError as err:  # ITK reports a full disk as a RuntimeError
            raise OSError(errno.EIO, f"ITK could not write it: {str(err).strip()[-200:]}") from err
        # The header names its .raw by basename: move the data first, then the header.
        os.replace(tmp / f"{base.name}.raw", base.with_name(f"{base.name}.raw"))
        os.replace(tmp / target.name, target)


def write_nifti(base: Path, array: np.ndarray, spacing: tuple[float, float]) -> None:
    """A .nii.gz stored (W, H[, T]) with zooms (col, row[, 1]), like the 2023 release."""
    nib = lazy_import("nibabel", base.with_name(f"{base.name}.nii.gz"))
    data = _as_uint8(array, base)
    stored = data.T if data.ndim == 2 else data.transpose(2, 1, 0)  # (W, H) / (W, H, T)
    affine = np.diag([float(spacing[1]), float(spacing[0]), 1.0, 1.0])
    image = nib.Nifti1Image(np.ascontiguousarray(stored), affine)
    image.set_data_dtype(np.uint8)
    image.header.set_zooms((float(spacing[1]), float(spacing[0]), *[1.0] * (stored.ndim - 2)))
    target = base.with_name(f"{base.name}.nii.gz")
    with writing(target), _temp_dir(base.parent) as tmp:
        nib.save(image, str(tmp / target.name))
        os.replace(tmp / target.name, target)
