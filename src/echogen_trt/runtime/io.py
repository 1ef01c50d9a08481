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
import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from echogen_trt.artifacts.labels import MAX_LABEL, PALETTE
from echogen_trt.errors import BackendUnavailable, InputMismatch
from echogen_trt.fileio import show_path, write_bytes_atomic

# Masks larger than this are refused from the file header, before decoding: a 1 MB PNG can
# claim 30000x30000 pixels (a decompression bomb), and --size original --overlay then allocates
# about 10 bytes per pixel. 8192x8192 is far above any echo mask; `max_pixels` changes it.
MAX_PIXELS = 8192 * 8192
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".npy", ".mhd", ".nii", ".nii.gz")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")
# Masks saved for viewing spread labels 0..3 over the range: x85 (0/85/170/255, 8-bit range,
# also as found in 16-bit files) or x21845 (0/21845/43690/65535, the 16-bit range). The two
# cannot be confused: 3 x 85 = 255 < 21845.
SCALES = (255 // MAX_LABEL, 65535 // MAX_LABEL)
# BGR colours per label for the mask panel and the contours: the data layer's palette.
LABEL_COLOURS_BGR: dict[int, tuple[int, int, int]] = {
    label: (int(b), int(g), int(r)) for label, (b, g, r) in enumerate(PALETTE) if label
}


class MaskTooLarge(InputMismatch):
    """A mask over the pixel limit (a service answers 413 rather than 400)."""


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
def read_mask(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One mask file as uint8 (H, W) raw labels 0..3; InputMismatch naming the file otherwise.

    Accepts raw labels 0..3 or the scaled conventions x85 (0/85/170/255, in 8- or 16-bit
    files) and x21845 (0/21845/43690/65535). Colour images are accepted only when grey in fact
    (all colour channels equal). A mask of more than `max_pixels` pixels is refused from its
    header (PNG, BMP, TIFF, NIfTI) before decoding; running out of memory is an InputMismatch
    too, so one huge file never ends a batch.
    """
    return _read_labels(Path(path), max_pixels, _to_2d)


def read_mask_frames(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """uint8 (N, H, W) raw labels: a sequence mask (CAMUS `*_half_sequence_gt`, a 3-D .npy) or
    one 2-D mask as N = 1. The checks and messages of `read_mask`; `max_pixels` is per frame."""
    return _read_labels(Path(path), max_pixels, _to_frames)


def _read_labels(
    p: Path, max_pixels: int, shaped: Callable[[np.ndarray, Path | str], np.ndarray]
) -> np.ndarray:
    """read_mask's body: read `p`, give it its shape with `shaped`, check size and values."""
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist or cannot be read"
        raise InputMismatch(
            f"{show_path(p)} | {what}. Expected a mask file ({', '.join(MASK_SUFFIXES)})."
        )
    suffix = mask_suffix(p)
    try:
        if suffix == ".npy":
            array = _read_npy(p, max_pixels)
        elif suffix in (".mhd", ".nii", ".nii.gz"):
            array = _read_medical(p, suffix, max_pixels)
        else:
            array = _read_image(p, max_pixels)
        mask = shaped(array, p)
        check_pixels(p, mask.shape[-2:], max_pixels)
        return labels_from_values(mask, show_path(p))
    except (InputMismatch, BackendUnavailable):  # BackendUnavailable: no [medical] extra
        raise
    except Exception as err:  # the decoders (SimpleITK, nibabel, numpy) raise all sorts
        if is_out_of_memory(err):
            raise InputMismatch(
                f"{show_path(p)} | out of memory while reading it. Expected a mask that fits "
                "in memory. Hint: lower --max-pixels to refuse such files up front."
            ) from err
        raise InputMismatch(
            f"{show_path(p)} | cannot be read ({type(err).__name__}: {str(err).strip()[:200]})."
            " Expected a readable mask file."
        ) from err


def is_out_of_memory(err: BaseException) -> bool:
    """MemoryError, or OpenCV's "Insufficient memory" cv2.error (it raises no MemoryError)."""
    return isinstance(err, MemoryError) or (
        isinstance(err, cv2.error) and getattr(err, "code", None) == cv2.Error.StsNoMem
    )


def check_pixels(p: Path | str, shape: tuple[int, ...], max_pixels: int) -> None:
    """InputMismatch when a (H, W) `shape` has more than `max_pixels` pixels."""
    if len(shape) == 2 and shape[0] * shape[1] > max_pixels:
        raise MaskTooLarge(
            f"{show_path(p)} | {shape[1]}x{shape[0]} pixels ({shape[0] * shape[1]:,}), over "
            f"the limit of {max_pixels:,}. Expected a mask of at most {max_pixels:,} pixels. "
            "Hint: raise the limit with --max-pixels if the file is genuine."
        )


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Formats OpenCV would decode but that we refuse for masks: no size check before decoding here,
# and lossy or palette formats do not carry labels faithfully anyway.
REFUSED_MAGICS = {
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"RIFF": "WebP/RIFF",
    b"\x00\x00\x00\x0cjP": "JPEG 2000",
    b"#?RADIANCE": "Radiance HDR",
    b"P1": "PNM", b"P2": "PNM", b"P3": "PNM", b"P4": "PNM", b"P5": "PNM", b"P6": "PNM",
}  # fmt: skip


def mask_format(data: bytes) -> str:
    """ "png", "bmp", "tiff" or "npy", told by the magic bytes (never by name or content type);
    "" for anything else."""
    if data[:8] == PNG_MAGIC:
        return "png"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in TIFF_MAGICS:
        return "tiff"
    if data[:6] == NPY_MAGIC:
        return "npy"
    return ""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG, BMP or TIFF header without decoding; None if unknown."""
    try:
        kind = mask_format(data)
        if kind == "png" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return height, width
        if kind == "bmp":
            if struct.unpack("<I", data[14:18])[0] == 12:  # BITMAPCOREHEADER: 16-bit sizes
                width, height = struct.unpack("<HH", data[18:22])
            else:
                width, height = struct.unpack("<ii", data[18:26])
            return abs(height), abs(width)
        if kind == "tiff":
            return _tiff_size(data)
    except struct.error:  # truncated header: refused as unsized
        return None
    return None


def npy_shape(data: bytes | BinaryIO, source: str) -> tuple[int, ...]:
    """The shape in a .npy header, read without reading the array (a 100-byte file can claim
    terabytes, and numpy allocates the claimed size before reading)."""
    stream = _io.BytesIO(data[:65536]) if isinstance(data, bytes) else data
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, SyntaxError, struct.error) as err:
        raise InputMismatch(
            f"{source} | .npy header cannot be read ({_one_line(err)[:160]}). Expected a "
            ".npy file written by numpy.save."
        ) from err
    return tuple(int(d) for d in shape)


def check_npy_size(shape: tuple[int, ...], source: str, max_pixels: int) -> None:
    """MaskTooLarge when a .npy claims more than `max_pixels` per frame or 4096 frames."""
    if len(shape) < 2:
        return  # refused by the shape check after loading (it is small)
    frames = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
    check_pixels(source, (shape[-2], shape[-1]), max_pixels)
    if frames > 4096:
        raise MaskTooLarge(
            f"{source} | .npy of shape {shape}: {frames:,} frames. Expected at most 4,096 "
            "frames of one mask sequence."
        )


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def refuse_unsized(data: bytes, source: str) -> InputMismatch:
    """The error for bytes that are not a mask format we can size from the header."""
    named = next((name for magic, name in REFUSED_MAGICS.items() if data.startswith(magic)), "")
    what = f"a {named} file" if named else f"an unknown format (starts with {data[:8]!r})"
    return InputMismatch(
        f"{source} | not a decodable image: {what}. Expected a PNG, BMP, TIFF or .npy mask "
        "(told by its content, not its name). Hint: save the label map as PNG; lossy formats "
        "such as JPEG change labels."
    )


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the first IFD (tags 256/257) of a classic or Big TIFF."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    if big:
        (offset,) = struct.unpack(order + "Q", data[8:16])
        (count,) = struct.unpack(order + "Q", data[offset : offset + 8])
        start, size, head = offset + 8, 20, "HHQ"
    else:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        start, size, head = offset + 2, 12, "HHI"
    found: dict[int, int] = {}
    for i in range(min(count, 4096)):
        entry = data[start + i * size : start + (i + 1) * size]
        tag, kind, _ = struct.unpack(order + head, entry[: struct.calcsize(order + head)])
        if tag in (256, 257):
            value = entry[size - (8 if big else 4) :]
            code = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if code is None:
                return None
            found[tag] = struct.unpack(order + code, value[: struct.calcsize(code)])[0]
    return (found[257], found[256]) if len(found) == 2 else None


def _read_image(p: Path, max_pixels: int) -> np.ndarray:
    data = np.fromfile(p, dtype=np.uint8)  # not cv2.imread: unicode paths on every platform
    return _decode_image(data, show_path(p), max_pixels)


def _decode_image(data: np.ndarray, source: str, max_pixels: int) -> np.ndarray:
    if data.size == 0:
        raise InputMismatch(f"{source} | empty file. Expected an image holding a mask.")
    head = data[:65536].tobytes()
    if mask_format(head) not in ("png", "bmp", "tiff"):
        raise refuse_unsized(head, source)
    size = image_size(data.tobytes() if mask_format(head) == "tiff" else head)
    if size is None:
        raise InputMismatch(
            f"{source} | not a decodable image: its {mask_format(head).upper()} header is "
            "truncated or unusual (no size to check). Expected a mask whose size can be checked "
            "before decoding. Hint: re-save it as PNG."
        )
    check_pixels(source, size, max_pixels)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputMismatch(
            f"{source} | not a decodable image (corrupt or truncated). Expected a PNG, BMP "
            "or TIFF mask. Hint: re-export it from the annotation tool."
        )
    if image.ndim == 3:
        image = _grey_from_colour(image, source)
    return np.asarray(image)


def _grey_from_colour(image: np.ndarray, source: str) -> np.ndarray:
    colour = image[..., :3] if image.shape[2] >= 3 else image[..., :1]
    first = colour[..., 0]
    if not all(np.array_equal(first, colour[..., c]) for c in range(1, colour.shape[2])):
        raise InputMismatch(
            f"{source} | colour image ({image.shape[2]} channels with different values). "
            "Expected a single-channel mask of labels 0..3. Hint: save the label map as 8-bit "
            "greyscale (palette PNGs lose their indices when decoded)."
        )
    return np.asarray(first)


def _read_npy(p: Path, max_pixels: int) -> np.ndarray:
    if p.stat().st_size == 0:
        raise InputMismatch(f"{show_path(p)} | empty file. Expected a .npy array holding a mask.")
    with p.open("rb") as stream:
        check_npy_size(npy_shape(stream, show_path(p)), show_path(p), max_pixels)
    return np.asarray(np.load(p, allow_pickle=False))


def mask_from_bytes(data: bytes, source: str, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A PNG/BMP/TIFF or .npy mask held in memory (an upload) as uint8 (H, W) labels 0..3:
    the checks and messages of `read_mask`, with `source` as the subject. The format is told
    by the magic bytes and the size checked from the header before anything is decoded."""
    try:
        if mask_format(data) == "npy":
            check_npy_size(npy_shape(data, source), source, max_pixels)
            array = np.asarray(np.load(_io.BytesIO(data), allow_pickle=False))
        else:
            array = _decode_image(np.frombuffer(data, np.uint8), source, max_pixels)
        mask = _to_2d(array, source)
        check_pixels(source, mask.shape, max_pixels)
        return labels_from_values(mask, source)
    except InputMismatch:
        raise
    except Exception as err:  # numpy's .npy parser raises ValueError and others
        raise InputMismatch(
            f"{source} | cannot be read ({type(err).__name__}: {str(err).strip()[:200]})."
            " Expected a PNG or .npy mask."
        ) from err


def _read_medical(p: Path, suffix: str, max_pixels: int) -> np.ndarray:
    """CAMUS masks, in display order by the data layer's reader (one place knows orientation)."""
    if p.stat().st_size == 0:
        raise InputMismatch(f"{show_path(p)} | empty file. Expected a {suffix} mask.")
    from echogen_trt.artifacts.medical_image import lazy_import, read_medical

    if suffix != ".mhd":  # .nii.gz is compressed: check the header's size before decoding
        nibabel = lazy_import("nibabel", show_path(p))
        shape: tuple[int, ...] = tuple(getattr(nibabel.load(str(p)), "shape", ()))  # header only
        if len(shape) >= 2:
            check_pixels(p, (int(shape[1]), int(shape[0])), max_pixels)

    return read_medical(p)[0]


def _to_2d(array: np.ndarray, p: Path | str) -> np.ndarray:
    squeezed = np.squeeze(array) if array.ndim > 2 else array
    if squeezed.ndim != 2 or 0 in squeezed.shape:
        raise InputMismatch(
            f"{show_path(p)} | array of shape {tuple(array.shape)}. Expected one 2-D mask (H, W). "
            "Hint: send a sequence one frame at a time, or give the file to `generate`."
        )
    return squeezed


def _to_frames(array: np.ndarray, p: Path | str) -> np.ndarray:
    """(N, H, W) from a 2-D mask (N = 1) or a 3-D sequence, leading unit axes dropped."""
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    frames = array[None] if array.ndim == 2 else array
    if frames.ndim != 3 or 0 in frames.shape:
        raise InputMismatch(
            f"{show_path(p)} | array of shape {tuple(array.shape)}. Expected one 2-D mask "
            "(H, W) or a sequence of them (N, H, W)."
        )
    return frames


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
    for scale in SCALES:  # whatever the file's bit depth
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
        "1 LV, 2 myocardium, 3 LA) or scaled x85 (0/85/170/255) or x21845 (0/21845/43690/65535, "
        "16 bit). Hint: is this an image rather than a mask?"
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
