"""`echogen-trt demo`: the whole pipeline on built-in phantom data, in one command.

Synthesise a small phantom dataset, train a generator for a few minutes, export it to ONNX (FP32
and FP16), build a TensorRT engine where possible, generate frames for held-out masks from disk,
benchmark, and write a report (report.md, report.json, contact_sheet.png). Running it again reuses
every step whose inputs did not change.

    from echogen_trt.demo import run_demo

    summary = run_demo(out="demo")
    print(summary.report, summary.metrics["trained"])
"""

from echogen_trt.demo.config import DemoConfig
from echogen_trt.demo.run import DemoSummary, StepResult, run_demo

__all__ = ["DemoConfig", "DemoSummary", "StepResult", "run_demo"]
