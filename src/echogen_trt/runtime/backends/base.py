"""One small interface for every inference backend (the registry's records name them).

Template method, as in Polygraphy: the public `open/infer/close` do the state checks and the
input validation; a backend writes only `_open`, `_infer` and `_close`. Construction is cheap and
allocates nothing; `open()` allocates (session, or TRT context, stream and buffers).
"""

from __future__ import annotations

import abc
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import InputMismatch, InternalError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorSpec:
    """Shape (None for a dynamic dimension) and numpy dtype of one input or output."""

    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]


class Backend(abc.ABC):
    """Base class. Subclasses set `name`, and in `_open` fill `self._inputs`, `self._outputs`
    and `self._meta`."""

    name: str = "base"

    def __init__(self, model_path: str, *, device: int = 0, **opts: Any) -> None:
        self.model_path = str(model_path)
        self.device = device
        self.opts = opts
        self.last_latency_ms: float | None = None
        self._is_open = False
        self._inputs: dict[str, TensorSpec] = {}
        self._outputs: dict[str, TensorSpec] = {}
        self._meta: ModelMeta | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> Backend:
        """Allocate what inference needs. Idempotent."""
        if not self._is_open:
            self._open()
            self._is_open = True
        return self

    def close(self) -> None:
        """Free everything `open` allocated. Idempotent."""
        if self._is_open:
            self._close()
            self._is_open = False

    def __enter__(self) -> Backend:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_is_open", False):
            warnings.warn(
                f"{type(self).__name__}({self.model_path}) was opened but never closed",
                ResourceWarning,
                stacklevel=2,
            )

    # -- metadata --------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        self._require_open("inputs")
        return self._inputs

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        self._require_open("outputs")
        return self._outputs

    @property
    def meta(self) -> ModelMeta:
        self._require_open("meta")
        if self._meta is None:
            raise InternalError(f"{type(self).__name__}._open did not set _meta")
        return self._meta

    @property
    def max_batch(self) -> int | None:
        """Largest batch the model accepts (None: unbounded). Engines override this."""
        return None

    @property
    def min_batch(self) -> int:
        """Smallest batch the model accepts: a static batch dimension, else 1. Engines override
        this with their profile's minimum. `infer` pads smaller batches up to it."""
        spec = next(iter(self.inputs.values()), None)
        return int(spec.shape[0]) if spec and spec.shape and spec.shape[0] is not None else 1

    @property
    def compute_device(self) -> str:
        """ "cuda" or "cpu": where this (opened) backend does its arithmetic."""
        return "cpu"

    @property
    def weights(self) -> str:
        """What weights it runs, for reports: "file" (the model file's own) unless overridden."""
        return "file"

    @classmethod
    def environment(cls) -> str:
        """What this backend sees of the machine (devices, helper packages), for doctor; may
        import the backend's package. Empty when there is nothing beyond the version."""
        return ""

    # -- inference -------------------------------------------------------------------------
    def infer(
        self, feeds: dict[str, np.ndarray], *, check: bool = True, reuse_outputs: bool = False
    ) -> dict[str, np.ndarray]:
        """Run one batch. Validates names, dtypes and shapes unless check=False.

        A batch smaller than `min_batch` (a static batch, an engine profile's minimum) is padded
        with empty masks and the matching outputs are dropped: the one padding rule.
        Returns copies unless reuse_outputs=True (then the arrays may be overwritten by the next
        call). Sets `last_latency_ms` (wall time of this call, after the device is synchronised).
        """
        self._require_open("infer()")
        count = len(next(iter(feeds.values()))) if feeds else 0
        if 0 < count < self.min_batch:
            feeds = {name: pad_batch(arr, self.min_batch) for name, arr in feeds.items()}
        if check:
            check_feeds(feeds, self._inputs, self.max_batch)
        start = time.perf_counter()
        out = self._infer(feeds)
        self.last_latency_ms = (time.perf_counter() - start) * 1e3
        if 0 < count < self.min_batch:
            out = {name: arr[:count] for name, arr in out.items()}
        if not reuse_outputs:
            out = {k: np.array(v, copy=True) for k, v in out.items()}
        return out

    def timings(self) -> dict[str, float]:
        """Per-stage times of the last call in ms (e.g. h2d, compute, d2h) where known."""
        return {}

    # -- subclass hooks --------------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    def _require_open(self, what: str) -> None:
        if not self._is_open:
            raise InternalError(f"{type(self).__name__} | {what} before open(). Call open() first.")


def pad_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """`batch` with empty (all-zero: background) items appended up to `size` along axis 0."""
    if size <= len(batch):
        return batch
    pad = np.zeros((size - len(batch), *batch.shape[1:]), dtype=batch.dtype)
    return np.concatenate([batch, pad])


def check_feeds(
    feeds: dict[str, np.ndarray], specs: dict[str, TensorSpec], max_batch: int | None = None
) -> None:
    """Raise InputMismatch unless `feeds` match `specs` by name, dtype and static dims."""
    if set(feeds) != set(specs):
        raise InputMismatch(f"inputs | got {sorted(feeds)}, expected {sorted(specs)}.")
    for name, spec in specs.items():
        arr = feeds[name]
        if arr.dtype != spec.dtype:
            raise InputMismatch(f"input '{name}' | dtype {arr.dtype}, expected {spec.dtype}.")
        if arr.ndim != len(spec.shape) or any(
            want is not None and got != want
            for got, want in zip(arr.shape, spec.shape, strict=True)
        ):
            shown = ", ".join("?" if d is None else str(d) for d in spec.shape)
            raise InputMismatch(f"input '{name}' | shape {tuple(arr.shape)}, expected ({shown}).")
        if max_batch is not None and arr.shape[0] > max_batch:
            raise InputMismatch(
                f"input '{name}' | batch {arr.shape[0]} exceeds the model's maximum {max_batch}. "
                "Hint: pass a smaller --batch-size or rebuild the engine with a larger --max-batch."
            )
