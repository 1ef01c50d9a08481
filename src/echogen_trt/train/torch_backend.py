"""PyTorch backend: serve a training checkpoint (.pt) directly, to check ONNX and TensorRT.

It implements the runtime's Backend interface but lives beside the checkpoints: it needs torch
and the model code, which the torch-free runtime must not import. The runtime's registry names it
by module path and imports it only when a .pt file is served. torch is imported inside `_open`,
so a missing torch is a BackendUnavailable naming the extra, not an ImportError. The
I/O is the float contract of an exported model (float32 (N, 1, H, W) raw labels in, [0, 1] out)
and the ModelMeta is built from the checkpoint, so the same pre/post-processing serves it.

With `source_meta` (bench's eager FP32 baseline when no .pt is among the models) the generator is
rebuilt from that ModelMeta's `model_config` with fresh random weights instead: a dense conv net
costs the same whatever its weights, so this is fine for timing, and `weights` says which it was.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta, meta_from_checkpoint_info
from echogen_trt.artifacts.precision import FP32
from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.runtime.backends.base import Backend, TensorSpec

log = logging.getLogger(__name__)


class TorchBackend(Backend):
    """A checkpoint's generator in eval mode under `torch.inference_mode`.

    Options: `torch_device` ("cpu", "cuda" or "auto": cuda when available; default "auto"),
    `threads` (torch intra-op threads; default: torch's own), `source_meta` (a ModelMeta: rebuild
    its `model_config` with random weights; `model_path` then only names it in reports).
    """

    name = "torch"

    def __init__(
        self, model_path: str, *, source_meta: ModelMeta | None = None, **opts: Any
    ) -> None:
        super().__init__(model_path, **opts)
        self._source_meta = source_meta

    @property
    def weights(self) -> str:
        return "checkpoint" if self._source_meta is None else "random (rebuilt from model_config)"

    @property
    def compute_device(self) -> str:
        self._require_open("compute_device")
        return "cuda" if self._dev.type == "cuda" else "cpu"

    @classmethod
    def environment(cls) -> str:
        torch = importlib.import_module("torch")
        cuda = torch.cuda.is_available()
        return f"CUDA {'available: ' + torch.cuda.get_device_name(0) if cuda else 'no'}"

    def _open(self) -> None:
        # Imported here so that a missing torch becomes a BackendUnavailable with the hint.
        try:
            torch = importlib.import_module("torch")
            from echogen_trt.models.factory import build_generator
            from echogen_trt.train.checkpoint import load_generator
        except ImportError as err:
            raise BackendUnavailable(
                f"torch | not installed ({err}). Hint: `pip install 'echogen-trt[train]'`, or "
                "export the checkpoint to ONNX and serve that."
            ) from err
        self._torch = torch
        self._dev = self._pick_device(torch)
        if self.opts.get("threads"):
            torch.set_num_threads(int(self.opts["threads"]))
        if self._source_meta is None:
            model, info = load_generator(self.model_path, map_location=self._dev)
            self._model = model.eval()
            self._meta = meta_from_checkpoint_info(info)
        else:
            self._model = build_generator(**self._random_config()).to(self._dev).float().eval()
            self._meta = replace(self._source_meta, io="float", precision=FP32)
        height, width = self._meta.input_size
        spec = TensorSpec((None, 1, height, width), np.dtype(np.float32))
        self._inputs = {self._meta.input_name: spec}
        self._outputs = {self._meta.output_name: spec}
        log.debug("torch | %s on %s, step %d", self.model_path, self._dev, self._meta.step)

    def _random_config(self) -> dict[str, Any]:
        meta = self._source_meta
        assert meta is not None  # only called with source_meta
        config: dict[str, Any] = dict(meta.model_config)
        if not config:
            raise ConfigError(
                f"{self.model_path} | carries no model_config to rebuild the torch baseline from. "
                "Hint: pass the .pt checkpoint too, or --no-baseline."
            )
        config.setdefault("image_size", int(meta.input_size[0]))
        return config

    def _pick_device(self, torch: Any) -> Any:
        want = str(self.opts.get("torch_device") or "auto")
        cuda = torch.cuda.is_available()
        if want == "cuda" and not cuda:
            raise BackendUnavailable(
                "torch | torch_device 'cuda' asked but CUDA is not available. Expected a CUDA "
                "build of torch and a GPU. Hint: use torch_device='cpu'."
            )
        if want == "cuda" or (want == "auto" and cuda):
            return torch.device("cuda", self.device)
        return torch.device("cpu")

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        meta = self.meta
        x = torch.from_numpy(np.ascontiguousarray(feeds[meta.input_name])).to(self._dev)
        with torch.inference_mode():
            y = self._model(x)
        if self._dev.type == "cuda":
            torch.cuda.synchronize(self._dev)
        return {meta.output_name: y.float().cpu().numpy()}

    def _close(self) -> None:
        del self._model
