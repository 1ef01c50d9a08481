"""The Python API: masks in, echo frames out, on whichever backend serves the model file.

    from echogen_trt.runtime import MaskToEcho

    with MaskToEcho("model.onnx") as gen:
        frames = gen.generate(masks)  # uint8 (N, H, W) at the model's resolution

Everything the model needs (size, kept labels, float or uint8 I/O) comes from its metadata, so the
caller passes raw label masks of any size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import ConfigError, InputMismatch
from echogen_trt.runtime import model_tensors
from echogen_trt.runtime.backends.base import Backend
from echogen_trt.runtime.io import labels_from_values
from echogen_trt.runtime.registry import open_backend

log = logging.getLogger(__name__)


class MaskToEcho:
    """Serve a model file (.engine, .onnx or .pt) in batches.

    `backend`: None/"auto" (from the suffix), "tensorrt", "onnxrt" or "torch"; `opts` go to the
    backend (device, providers, threads, ...). Opens on first use or on `with`; `close()` frees.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "model.onnx",
        backend: str | None = None,
        batch_size: int = 8,
        **opts: Any,
    ) -> None:
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size | {batch_size}. Expected an integer >= 1.")
        self.model = str(model)
        self.batch_size = int(batch_size)
        self.backend: Backend = open_backend(model, backend, **opts)
        self.compute_ms = 0.0  # sum of backend latencies since open (compute-only timing)
        self.frames = 0
        self.nonfinite_frames = 0  # frames whose output held NaN or Inf, since open
        self.last_nonfinite = np.zeros(0, dtype=bool)  # per frame of the last run_prepared

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> MaskToEcho:
        if not self.backend.is_open:
            self.backend.open()
            try:
                check_model_io(self.backend)
            except BaseException:
                self.backend.close()
                raise
        return self

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> MaskToEcho:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def meta(self) -> ModelMeta:
        """The model's conventions (opens the backend if needed)."""
        return self.open().backend.meta

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the frames `generate` returns."""
        return self.meta.input_size

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, masks: np.ndarray | Sequence[np.ndarray], *, check_labels: bool = True
    ) -> np.ndarray:
        """uint8 frames (N, H, W) at the model's resolution for N label masks of any size.

        `masks`: one (H, W) mask, an (N, H, W) array, or a list of (H, W) masks; raw labels 0..3
        (or the scaled 0/85/170/255, mapped unless check_labels=False).
        """
        return self.run_prepared(self._prepare_all(masks, check_labels))

    def outputs(
        self, masks: np.ndarray | Sequence[np.ndarray], *, check_labels: bool = True
    ) -> np.ndarray:
        """The model's own output for N masks, before the conversion to frames: float32
        (N, 1, H, W) in [0, 1] (float io) or uint8 (N, H, W). The same path as `generate` (labels,
        resizing, batching, padding), for export's verification and the INT8 accuracy gate."""
        prepared = self._prepare_all(masks, check_labels)
        chunk, _ = self._chunking()
        parts = [
            np.array(infer_outputs(self.backend, prepared[start : start + chunk]), copy=True)
            for start in range(0, len(prepared), chunk)
        ]
        return np.concatenate(parts)

    def _prepare_all(
        self, masks: np.ndarray | Sequence[np.ndarray], check_labels: bool
    ) -> list[np.ndarray]:
        items = _as_mask_list(masks)
        if check_labels:
            items = [labels_from_values(m, f"mask {i}") for i, m in enumerate(items)]
        return [self.prepare(m) for m in items]

    def prepare(self, mask: np.ndarray) -> np.ndarray:
        """One raw-label mask as the model wants it (resized, labels selected); thread-safe."""
        return model_tensors.prepare_mask(mask, self.meta)

    def restore(self, frame: np.ndarray, size_hw: tuple[int, ...]) -> np.ndarray:
        """A frame at the model's size resized back to a mask's own (H, W) (size=original): the
        one rule `generate --size original` and serve's ?size=original follow."""
        return model_tensors.restore_size(frame, (int(size_hw[0]), int(size_hw[1])))

    def run_prepared(
        self, prepared: Sequence[np.ndarray], *, allow_nonfinite: bool = False
    ) -> np.ndarray:
        """Frames for masks already passed through `prepare`, in chunks the model accepts.

        A frame whose model output holds NaN or Inf would be silently black or white: it is
        counted (`nonfinite_frames`), flagged in `last_nonfinite` and, unless
        `allow_nonfinite` (the caller reports those frames itself), an InputMismatch."""
        if not prepared:
            height, width = self.input_size
            self.last_nonfinite = np.zeros(0, dtype=bool)
            return np.zeros((0, height, width), dtype=np.uint8)
        chunk, fixed = self._chunking()
        parts = [
            self._run_chunk(prepared[start : start + chunk], fixed)
            for start in range(0, len(prepared), chunk)
        ]
        self.last_nonfinite = np.concatenate([bad for _, bad in parts])
        bad = int(self.last_nonfinite.sum())
        self.nonfinite_frames += bad
        if bad and not allow_nonfinite:
            raise nonfinite_error(self.model, bad, len(prepared))
        return np.concatenate([frames for frames, _ in parts])

    def _chunking(self) -> tuple[int, int]:
        """(chunk size, fixed batch or 0) from batch_size, a static batch dim and max_batch."""
        fixed, most = batch_limits(self.backend)
        chunk = fixed or self.batch_size
        if most is not None:
            chunk = min(chunk, most)
        return max(chunk, 1), fixed

    def _run_chunk(
        self, prepared: Sequence[np.ndarray], fixed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        frames, bad = frames_and_flags(self.backend, prepared)
        self.compute_ms += self.backend.last_latency_ms or 0.0
        self.frames += len(prepared)
        return frames, bad


def check_model_io(backend: Backend) -> None:
    """InputMismatch at load when the metadata's tensor names are not the model's, or the
    output's static shape is not frames at the input size ((N, 1, H, W) or (N, H, W)): an NHWC
    output would otherwise be written as 64x1 frames."""
    meta, name = backend.meta, backend.model_path
    for key, wanted, have in (
        ("input_name", meta.input_name, backend.inputs),
        ("output_name", meta.output_name, backend.outputs),
    ):
        if wanted not in have:
            raise InputMismatch(
                f"model {name} | metadata echogen.{key} is {wanted!r}, but the model's tensors "
                f"are {sorted(have)}. Hint: export it again with `echogen-trt export`."
            )
    shape = backend.outputs[meta.output_name].shape
    height, width = meta.input_size
    expected = [(None, 1, height, width), (None, height, width)]
    if not any(
        len(shape) == len(e)
        and all(d is None or w is None or d == w for d, w in zip(shape, e, strict=True))
        for e in expected
    ):
        shown = ", ".join("?" if d is None else str(d) for d in shape)
        raise InputMismatch(
            f"model {name} | output '{meta.output_name}' has shape ({shown}). Expected "
            f"(N, 1, {height}, {width}) or (N, {height}, {width}) frames at the input size. "
            "Hint: the model is not an echogen-trt export (NHWC output?); export it with "
            "`echogen-trt export`."
        )


def batch_limits(backend: Backend) -> tuple[int, int | None]:
    """(fixed batch or 0, largest batch or None): a static batch dimension of the model and an
    engine profile's maximum. The one batch rule the API, the pipeline and bench follow."""
    spec = backend.inputs[backend.meta.input_name]
    fixed = spec.shape[0] if spec.shape and spec.shape[0] is not None else 0
    return fixed, backend.max_batch


def infer_frames(
    backend: Backend, prepared: Sequence[np.ndarray], *, check: bool = True
) -> np.ndarray:
    """One inference: prepared masks -> packed batch -> uint8 frames (N, H, W), copied out of
    the backend's reused output buffer. InputMismatch when a frame's output is not finite."""
    frames, bad = frames_and_flags(backend, prepared, check=check)
    if bad.any():
        raise nonfinite_error(backend.model_path, int(bad.sum()), len(prepared))
    return frames


def frames_and_flags(
    backend: Backend, prepared: Sequence[np.ndarray], *, check: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """`infer_frames`' frames and, per frame, whether its output held NaN or Inf. The output's
    frame size is checked against the model's: an NHWC output would make 64x1 frames."""
    meta, n = backend.meta, len(prepared)
    raw = infer_outputs(backend, prepared, check)
    frames = model_tensors.frames_from_output(raw, meta)
    if tuple(frames.shape[1:]) != tuple(meta.input_size) or len(frames) < n:
        raise InputMismatch(
            f"model {backend.model_path} | output '{meta.output_name}' has shape {raw.shape}. "
            f"Expected (N, 1, {meta.input_size[0]}, {meta.input_size[1]}) or (N, H, W) "
            "frames at the model's input size. Hint: the model is not an echogen-trt export "
            "(NHWC output?); export it with `echogen-trt export`."
        )
    if np.issubdtype(raw.dtype, np.floating):
        bad = ~np.isfinite(raw[:n].reshape(n, -1)).all(axis=1)
    else:
        bad = np.zeros(n, dtype=bool)
    return np.array(frames[:n], copy=True), bad


def nonfinite_error(model: str, bad: int, total: int) -> InputMismatch:
    """The one message for frames whose model output held NaN or Inf."""
    return InputMismatch(
        f"model {model} | its output holds non-finite values (NaN or Inf) for {bad} of {total} "
        "frame(s). Expected finite values in [0, 1]; they would be written as flat frames. "
        "Hint: the model is broken (diverged training, FP16 overflow); retrain or re-export it."
    )


def infer_outputs(
    backend: Backend, prepared: Sequence[np.ndarray], check: bool = True
) -> np.ndarray:
    """One inference: prepared masks -> packed batch -> the model's output (N, ...), possibly the
    backend's reused buffer (`Backend.infer` pads a batch below the model's minimum)."""
    meta = backend.meta
    batch = model_tensors.pack_batch(prepared, meta)
    return backend.infer({meta.input_name: batch}, check=check, reuse_outputs=True)[
        meta.output_name
    ]


def _as_mask_list(masks: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(masks, np.ndarray):
        if masks.ndim == 2:
            return [masks]
        if masks.ndim == 3:
            return list(masks)
        raise InputMismatch(
            f"masks | array of shape {masks.shape}. Expected (H, W) or (N, H, W) label masks."
        )
    items = [np.asarray(m) for m in masks]
    bad = [i for i, m in enumerate(items) if m.ndim != 2]
    if bad:
        raise InputMismatch(
            f"masks | item {bad[0]} has shape {items[bad[0]].shape}. Expected (H, W) label masks."
        )
    return items
