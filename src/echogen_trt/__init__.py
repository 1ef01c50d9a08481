"""echogen-trt: cardiac segmentation masks to echocardiogram frames, from training to TensorRT.

The import is light on purpose: nothing here pulls torch, onnxruntime or TensorRT, so the CLI and
the runtime start fast on a Jetson.
"""

__version__ = "0.1.0"
