"""Export: generator to ONNX (FP32/FP16), verification, TensorRT engines with provenance."""
