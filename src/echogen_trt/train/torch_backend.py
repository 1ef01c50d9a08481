"""PyTorch backend: serve a training checkpoint (.pt) directly, to check ONNX and TensorRT.

It implements the runtime's Backend interface but lives beside the checkpoints: it needs torch
and the model code, which the torch-free runtime must not import. The runtime's registry names it
by module path and imports it only when a .pt file is served. torch is imported inside `_open`,
so a missing torch is a BackendUnavailable naming the extra, not an ImportError. The
I/O is the float contract of an exported model (float32 (N, 1, H, W) raw labels in, [0, 1] out)
and the ModelMeta is built from the checkpoint, so the same pre/post-processing serves it.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import meta_from_checkpoint_info
from echogen_trt.errors import BackendUnavailable
from echogen_trt.runtime.backends.base import Backend, TensorSpec

log = logging.getLogger(__name__)


class TorchBackend(Backend):
    """A checkpoint's generator in eval mode under `torch.inference_mode`.

    Options: `torch_device` ("cpu", "cuda" or "auto": cuda when available; default "auto"),
    `threads` (torch intra-op threads; default: torch's own).
    """

    name = "torch"

    def _open(self) -> None:
        # Imported here so that a missing torch becomes a BackendUnavailable with the hint.
        try:
            torch = importlib.import_module("torch")
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
        model, info = load_generator(self.model_path, map_location=self._dev)
        self._model = model.eval()
        self._meta = meta_from_checkpoint_info(info)
        height, width = self._meta.input_size
        spec = TensorSpec((None, 1, height, width), np.dtype(np.float32))
        self._inputs = {self._meta.input_name: spec}
        self._outputs = {self._meta.output_name: spec}
        log.debug("torch | %s on %s, step %d", self.model_path, self._dev, self._meta.step)

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
