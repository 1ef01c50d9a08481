"""BatchNorm that keeps its running statistics the way the reference's Keras did.

The reference ran Keras 2.2.4 on TensorFlow 1.14. Its BatchNormalization normalises a training
batch exactly like PyTorch, but keeps the running statistics differently:
- the update is TF's `assign_moving_average(zero_debias=True)`: a zero-started average divided by
  1 - momentum**t, so the initial 0 / 1 are gone after the first step (PyTorch's average starts
  from 0 / 1 and takes about 20 steps at momentum 0.8 to forget them);
- the batch variance from `fused_batch_norm` is already Bessel-corrected (n / (n - 1)), and Keras
  multiplies it by n / (n - 1 - eps) once more.
Only the running statistics differ, so inference (and ONNX export, which sees a plain
BatchNormalization) is unchanged; what changes is G's inference-mode fakes for D in the first
iterations and the statistics a trained model ends with. tests/models/test_keras_parity.py checks
both against a Keras model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KerasBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose training-mode update follows Keras 2.2.4 on TF 1.14 (see module).

    `momentum` is PyTorch's convention (0.2 = Keras 0.8); `num_batches_tracked` is the t of the
    zero-debiasing, so checkpoints keep the exact state with no extra buffer. momentum=None
    (PyTorch's cumulative average, used to calibrate statistics) keeps PyTorch's update.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_buf, var_buf, momentum = self.running_mean, self.running_var, self.momentum
        if (
            not self.training
            or mean_buf is None
            or var_buf is None
            or momentum is None
            or x.is_meta
        ):
            return super().forward(x)
        # The fused kernel hands back the batch statistics: with momentum 1 it writes the batch
        # mean and the Bessel-corrected batch variance into these scratch buffers.
        batch_mean, batch_var = torch.zeros_like(mean_buf), torch.ones_like(var_buf)
        out = F.batch_norm(x, batch_mean, batch_var, self.weight, self.bias, True, 1.0, self.eps)
        with torch.no_grad():
            n = x.numel() // x.shape[1]
            corrected_var = batch_var * (n / (n - 1 - self.eps))  # Keras' second correction
            keep = 1.0 - float(momentum)  # Keras' momentum
            assert self.num_batches_tracked is not None  # track_running_stats=True here
            t = int(self.num_batches_tracked)
            for buf, new in ((mean_buf, batch_mean), (var_buf, corrected_var)):
                biased = buf * ((1 - keep**t) * keep) + (1 - keep) * new
                buf.copy_(biased / (1 - keep ** (t + 1)))
            self.num_batches_tracked.add_(1)
        return out
