"""Benchmark library behind `echogen-trt bench` and `benchmarks/`."""
