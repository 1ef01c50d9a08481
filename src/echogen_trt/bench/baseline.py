"""The PyTorch eager FP32 baseline, and where a backend computes (for the matching ceiling).

With a .pt checkpoint among the models, the baseline is the runtime's own `TorchBackend` on it
(the same trained weights). Without one, `RandomWeightsTorchBackend` rebuilds the generator from
the first model's `ModelMeta.model_config` with fresh random weights: a dense conv net costs the
same whatever its weights, so this is fine for timing, and the report says which it was.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.precision import FP32
from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime.backends.base import Backend, TensorSpec
from echogen_trt.train.torch_backend import TorchBackend

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class RandomWeightsTorchBackend(TorchBackend):
    """`build_generator(**meta.model_config)` with random weights, eval mode, FP32, eager.

    `model_path` names the model whose config was used (for the report only). Options as
    `TorchBackend`: `torch_device` ("auto" | "cpu" | "cuda"), `threads`. Only `_open` differs.
    """

    weights = "random (rebuilt from model_config)"

    def __init__(self, model_path: str, *, source_meta: ModelMeta, **opts: Any) -> None:
        super().__init__(model_path, **opts)
        self._source_meta = source_meta

    def _open(self) -> None:
        try:
            import torch

            from echogen_trt.models.factory import build_generator
        except ImportError as err:
            raise BackendUnavailable(
                f"torch baseline | torch is not installed ({err}). "
                "Hint: `pip install 'echogen-trt[train]'`, or pass --no-baseline."
            ) from err
        meta = self._source_meta
        config: dict[str, Any] = dict(meta.model_config)
        if not config:
            raise ConfigError(
                f"{self.model_path} | carries no model_config to rebuild the torch baseline from. "
                "Hint: pass the .pt checkpoint too, or --no-baseline."
            )
        config.setdefault("image_size", int(meta.input_size[0]))
        self._torch = torch
        self._dev = self._pick_device(torch)
        if self.opts.get("threads"):
            torch.set_num_threads(int(self.opts["threads"]))
        self._model = build_generator(**config).to(self._dev).float().eval()
        self._meta = replace(meta, io="float", precision=FP32)
        height, width = meta.input_size
        spec = TensorSpec((None, 1, height, width), np.dtype(np.float32))
        self._inputs = {meta.input_name: spec}
        self._outputs = {meta.output_name: spec}


def device_of(backend: Backend) -> str:
    """ "cuda" or "cpu": where `backend` (opened) does its arithmetic."""
    if backend.name == "tensorrt":
        return "cuda"
    providers = getattr(backend, "providers", None)
    if providers:
        return "cuda" if providers[0] in GPU_PROVIDERS else "cpu"
    dev = getattr(backend, "_dev", None)
    return "cuda" if getattr(dev, "type", "cpu") == "cuda" else "cpu"


def weights_of(backend: Backend) -> str:
    """What weights the timed model carries, for the report."""
    explicit = getattr(backend, "weights", None)
    if isinstance(explicit, str):
        return explicit
    return "checkpoint" if backend.name == "torch" else "file"
