"""Benchmark library behind `echogen-trt bench` and `benchmarks/` (torch-free at import).

- `runner.run_benchmark(models, BenchConfig) -> BenchReport`: the whole run;
- `plan`: options, which backend serves which file, the PyTorch baseline, input masks;
- `timing`: warm-up and the trtexec-style stopping rule; `stats`: percentiles, CV, throughput;
- `flops`: FLOPs per frame from an ONNX graph or a model_config; `ceiling`: GEMM GFLOP/s;
- `env`: the environment block; `report`: text/markdown tables; `plot`: PNG (matplotlib).
"""
