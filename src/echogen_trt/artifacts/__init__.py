"""The files each stage hands to the next, their contracts, and the GPU APIs both the engine
builder and the runtime call: torch-free.

`model_meta` (ModelMeta, and the one `meta_from_checkpoint_info`), `onnx_file` (ONNX files and
their echogen metadata), `provenance` (what an engine was built from and for), `precision`
(precision names and each command's default), `trt_api` (TensorRT logger, errors, dims, dtypes,
version; TensorRT itself is passed in, never imported here) and `cuda_mem` (CUDA memory, streams
and events through cuda-python or pycuda). train, export and runtime all import this layer; it
imports none of them (tests/test_layers.py).
"""
