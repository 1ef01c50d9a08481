"""echogen-trt: cardiac segmentation masks to echocardiogram frames, from training to TensorRT.

The import is light on purpose: nothing here pulls torch, onnxruntime or TensorRT, so the CLI and
the runtime start fast on a Jetson.

It does switch off, for this process, the usage telemetry two inference libraries start on
their own and the files they would leave under $HOME (README, "Files outside your folders"):
ONNX Runtime's device id (`~/.cache/Microsoft/DeveloperTools/.onnxruntime/`, off through its
`ORT_DISABLE_TELEMETRY` variable, unless the user set it) and OpenVINO's Google Analytics client
(`~/intel/openvino_ga_cid`, `~/intel/stats`: its optional `openvino_telemetry` module is
hidden, so OpenVINO and NNCF use their built-in no-op stubs). Both only take effect when they
happen before onnxruntime or openvino is imported; `ECHOGEN_VENDOR_TELEMETRY=1` leaves both on.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _quiet_vendor_telemetry() -> None:
    if _os.environ.get("ECHOGEN_VENDOR_TELEMETRY") == "1":
        return
    _os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    _sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


_quiet_vendor_telemetry()
