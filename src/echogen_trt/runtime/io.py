"""Reading masks and writing frames (OpenCV, torch-free).

Masks come from many tools in many forms: PNG/BMP/TIFF (8 or 16 bit), `.npy`, and the CAMUS
`*_gt.mhd` / `*_gt.nii.gz` files. `read_mask` turns each into the one contract the runtime uses,
uint8 (H, W) raw labels 0..3, or raises InputMismatch naming the file. Frames are written
atomically (temp file in the same folder, then `os.replace`), so an interrupted run never leaves
a half-written frame under a real name and `--skip-existing` can resume safely.
"""

from __future__ import annotations

import io as _io
import os
from pathlib import Path

import cv2
import numpy as np

from echogen_trt.data.experiments import MAX_LABEL
from echogen_trt.data.preview import PALETTE
from echogen_trt.errors import InputMismatch
from echogen_trt.fileio import write_bytes_atomic

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".npy", ".mhd", ".nii", ".nii.gz")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")
# Masks saved for viewing spread labels 0..3 over the full range: 0, 85, 170, 255 (8 bit).
_SCALES = {np.dtype(np.uint8): 255 // MAX_LABEL, np.dtype(np.uint16): 65535 // MAX_LABEL}
# BGR colours per label for the mask panel and the contours: the data layer's palette.
LABEL_COLOURS_BGR: dict[int, tuple[int, int, int]] = {
    label: (int(b), int(g), int(r)) for label, (b, g, r) in enumerate(PALETTE) if label
}


def mask_suffix(path: str | os.PathLike[str]) -> str:
    """The mask suffix of `path`, treating `.nii.gz` as one suffix ("" when unknown)."""
    name = Path(path).name.lower()
    for suffix in sorted(MASK_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return ""


def mask_stem(path: str | os.PathLike[str]) -> str:
    """The file name without its mask suffix (`p_gt.nii.gz` -> `p_gt`)."""
    name = Path(path).name
    suffix = mask_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else Path(path).stem


# -- reading ------------------------------------------------------------------------------------
def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """One mask file as uint8 (H, W) raw labels 0..3; InputMismatch naming the file otherwise.

    Accepts raw labels 0..3 or the scaled convention {0, 85, 170, 255} (16 bit: multiples of
    21845). Colour images are accepted only when grey in fact (all colour channels equal).
    """
    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist or cannot be read"
        raise InputMismatch(f"{p} | {what}. Expected a mask file ({', '.join(MASK_SUFFIXES)}).")
    suffix = mask_suffix(p)
    try:
        if suffix == ".npy":
            array = _read_npy(p)
        elif suffix in (".mhd", ".nii", ".nii.gz"):
            array = _read_medical(p, suffix)
        else:
            array = _read_image(p)
    except InputMismatch:
        raise
    except Exception as err:  # the decoders (SimpleITK, nibabel, numpy) raise all sorts
        raise InputMismatch(
            f"{p} | cannot be read ({type(err).__name__}: {str(err).strip()[:200]}). "
            "Expected a readable mask file."
        ) from err
    return labels_from_values(_to_2d(array, p), str(p))


def _read_image(p: Path) -> np.ndarray:
    data = np.fromfile(p, dtype=np.uint8)  # not cv2.imread: unicode paths on every platform
    if data.size == 0:
        raise InputMismatch(f"{p} | empty file. Expected an image holding a mask.")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputMismatch(
            f"{p} | not a decodable image (corrupt or truncated). Expected a PNG, BMP or TIFF "
            "mask. Hint: re-export it from the annotation tool."
        )
    if image.ndim == 3:
        image = _grey_from_colour(image, p)
    return np.asarray(image)


def _grey_from_colour(image: np.ndarray, p: Path) -> np.ndarray:
    colour = image[..., :3] if image.shape[2] >= 3 else image[..., :1]
    first = colour[..., 0]
    if not all(np.array_equal(first, colour[..., c]) for c in range(1, colour.shape[2])):
        raise InputMismatch(
            f"{p} | colour image ({image.shape[2]} channels with different values). Expected a "
            "single-channel mask of labels 0..3. Hint: save the label map as 8-bit greyscale "
            "(palette PNGs lose their indices when decoded)."
        )
    return np.asarray(first)


def _read_npy(p: Path) -> np.ndarray:
    if p.stat().st_size == 0:
        raise InputMismatch(f"{p} | empty file. Expected a .npy array holding a mask.")
    return np.asarray(np.load(p, allow_pickle=False))


def _read_medical(p: Path, suffix: str) -> np.ndarray:
    """CAMUS masks, in display order by the data layer's reader (one place knows orientation)."""
    if p.stat().st_size == 0:
        raise InputMismatch(f"{p} | empty file. Expected a {suffix} mask.")
    from echogen_trt.data.camus import read_medical

    return read_medical(p)[0]


def _to_2d(array: np.ndarray, p: Path) -> np.ndarray:
    squeezed = np.squeeze(array) if array.ndim > 2 else array
    if squeezed.ndim != 2 or 0 in squeezed.shape:
        raise InputMismatch(
            f"{p} | array of shape {tuple(array.shape)}. Expected one 2-D mask (H, W). "
            "Hint: sequences are not served; split them into one file per frame."
        )
    return squeezed


def labels_from_values(array: np.ndarray, source: str = "mask") -> np.ndarray:
    """Map a mask's values to uint8 raw labels 0..3 (raw, or the 0/85/170/255 convention)."""
    if array.dtype == np.uint8 and array.size and int(array.max()) <= MAX_LABEL:
        return array  # the common case, without counting values
    values = _unique(array)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise _bad_values(source, values)
    elif array.dtype.kind not in "uib":
        raise InputMismatch(
            f"{source} | dtype {array.dtype}. Expected integer labels 0..3 (uint8, uint16 or int)."
        )
    ints = values.astype(np.int64)
    if ints.size and ints.min() >= 0 and ints.max() <= MAX_LABEL:
        return array.astype(np.uint8, copy=False)
    scale = _SCALES.get(array.dtype, 255 // MAX_LABEL)
    if np.all(ints % scale == 0) and ints.min() >= 0 and ints.max() <= MAX_LABEL * scale:
        return (array.astype(np.int64) // scale).astype(np.uint8)
    raise _bad_values(source, values)


def _unique(array: np.ndarray) -> np.ndarray:
    if array.dtype in (np.uint8, np.uint16):  # bincount: O(n), no sort
        return np.flatnonzero(np.bincount(array.ravel(), minlength=1))
    if array.dtype == np.bool_:
        return np.unique(array.astype(np.uint8))
    return np.unique(array)


def _bad_values(source: str, values: np.ndarray) -> InputMismatch:
    shown = ", ".join(f"{v:g}" for v in values[:12].tolist())
    more = f" ... ({values.size} distinct)" if values.size > 12 else ""
    return InputMismatch(
        f"{source} | mask values {{{shown}{more}}}. Expected raw labels 0..3 (0 background, "
        "1 LV, 2 myocardium, 3 LA) or the scaled 0/85/170/255. Hint: is this an image rather "
        "than a mask?"
    )


# -- writing ------------------------------------------------------------------------------------
def encode_frame(path: str | os.PathLike[str], frame: np.ndarray) -> bytes:
    """The bytes of `frame` in the format named by the suffix (PNG, JPEG or .npy)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        buffer = _io.BytesIO()
        np.save(buffer, np.ascontiguousarray(frame), allow_pickle=False)
        return buffer.getvalue()
    if suffix not in FRAME_SUFFIXES:
        raise InputMismatch(
            f"{path} | unknown frame format {suffix!r}. "
            f"Expected one of {', '.join(FRAME_SUFFIXES)}."
        )
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(frame), params)
    if not ok:
        raise InputMismatch(
            f"{path} | OpenCV could not encode a {frame.dtype} {frame.shape} frame."
        )
    return bytes(encoded.tobytes())


def write_frame(path: str | os.PathLike[str], frame: np.ndarray) -> Path:
    """Write a uint8 frame atomically: encode, write a temp file beside it, `os.replace`."""
    target = Path(path)
    return write_bytes_atomic(target, encode_frame(target, frame))


# -- visual checks ------------------------------------------------------------------------------
def colour_mask(mask: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) rendering of a label mask (background black)."""
    out = np.zeros((*mask.shape, 3), dtype=np.uint8)
    for label, colour in LABEL_COLOURS_BGR.items():
        out[mask == label] = colour
    return out


def overlay(frame: np.ndarray, mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """The frame in BGR with each label's contour drawn over it (mask resized nearest to fit)."""
    if mask.shape != frame.shape[:2]:
        mask = cv2.resize(mask, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
    out = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    for label, colour in LABEL_COLOURS_BGR.items():
        binary = (mask == label).astype(np.uint8)
        if binary.any():
            contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, colour, thickness)
    return out


def panel(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Side by side, for eyeballing: mask colours | frame | contours over the frame (BGR)."""
    if mask.shape != frame.shape[:2]:
        mask = cv2.resize(mask, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    return np.hstack([colour_mask(mask), grey, overlay(frame, mask)])
