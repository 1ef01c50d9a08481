"""Deployment outside echogen-trt: artifacts laid out for other servers (NVIDIA Triton)."""
