"""Test doubles for what this machine lacks: TensorRT, CUDA and a GPU."""
