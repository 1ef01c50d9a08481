"""Torch-free runtime: mask-to-echo generation on TensorRT, ONNX Runtime or PyTorch."""
