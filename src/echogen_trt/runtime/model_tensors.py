"""Pre- and post-processing driven by the model's own metadata (ModelMeta), torch-free.

The reference resized masks with nearest neighbour (labels must never be interpolated) and fed
raw label values as floats with the labels an experiment does not keep set to zero. A "uint8"
model does the label selection and the scaling inside the graph, so it gets the raw labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from echogen_trt.artifacts.labels import select_labels
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.preprocess import resize_mask as training_resize_mask
from echogen_trt.errors import InputMismatch, InternalError

IO_KINDS = ("float", "uint8")


def resize_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to (H, W), the very function training used (same pixels as
    the reference's Pillow NEAREST), so served masks match the training masks; a no-op when the
    size already matches."""
    if mask.shape == tuple(size_hw):
        return mask
    return training_resize_mask(mask, (int(size_hw[0]), int(size_hw[1])))


def prepare_mask(mask: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """One uint8 (H, W) label mask as the model wants it, without the batch axes.

    float io: float32 (H, W) at the model size, unkept labels zeroed. uint8 io: uint8 (H, W).
    """
    resized = resize_mask(mask, meta.input_size)
    if meta.io == "uint8":
        return np.ascontiguousarray(resized, dtype=np.uint8)
    if meta.io == "float":
        return select_labels(resized, meta.kept_labels).astype(np.float32)
    raise InputMismatch(
        f"model io {meta.io!r} | unknown. Expected one of {IO_KINDS}. "
        "Hint: re-export the model with this version of echogen-trt."
    )


def pack_batch(prepared: Sequence[np.ndarray], meta: ModelMeta) -> np.ndarray:
    """Stack prepared masks into the model's input: float32 (N, 1, H, W) or uint8 (N, H, W).
    A batch below the model's minimum is padded by `Backend.infer` (the one padding rule)."""
    if not prepared:
        raise InternalError("pack_batch called with no masks")
    batch = np.stack(prepared)
    return batch[:, np.newaxis] if meta.io == "float" else batch


def batch_from_masks(masks: np.ndarray | Sequence[np.ndarray], meta: ModelMeta) -> np.ndarray:
    """N raw-label masks as one model input (prepared, then packed): what `MaskToEcho` feeds,
    for callers that hand the batch to another library (INT8 calibration, a torch reference)."""
    return pack_batch([prepare_mask(m, meta) for m in masks], meta)


def frames_from_output(output: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """The model's output as uint8 frames (N, H, W): round(clip(y, 0, 1) * 255) for float io."""
    if output.ndim == 4:
        output = output[:, 0]
    if output.ndim != 3:
        raise InputMismatch(
            f"output '{meta.output_name}' | shape {output.shape}. "
            "Expected (N, 1, H, W) or (N, H, W)."
        )
    if output.dtype == np.uint8:
        return output
    scaled = np.clip(output.astype(np.float32, copy=False), 0.0, 1.0) * 255.0
    with np.errstate(invalid="ignore"):  # NaN: counted and refused by the caller (mask_to_echo)
        return np.rint(scaled).astype(np.uint8)


def restore_size(frame: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A frame resized back to a mask's original (H, W) with bilinear interpolation."""
    height, width = int(size_hw[0]), int(size_hw[1])
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR))
