"""`echogen-trt evaluate`: how faithful a generator's frames are (paired metrics, segmentation
Dice, synthetic-only downstream Dice, KID).

`dice`, `kid` and `cache` are numpy-only; the protocol trains a PyTorch U-Net. The names below are
imported on first use so that `echogen_trt.evaluate.dice` stays torch-free.

    from echogen_trt.evaluate import run_evaluation
    summary = run_evaluation("data/", "model.onnx", out_dir="eval/")
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["EvalConfig", "EvalResult", "SegmenterSettings", "evaluate_generator", "run_evaluation"]

_HOMES = {
    "EvalConfig": "protocol",
    "EvalResult": "protocol",
    "evaluate_generator": "protocol",
    "run_evaluation": "run",
    "SegmenterSettings": "config",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
