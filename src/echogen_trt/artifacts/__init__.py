"""The files each stage hands to the next, and their contracts: torch-free, TensorRT-free.

`model_meta` (ModelMeta, and the one `meta_from_checkpoint_info`), `onnx_file` (ONNX files and
their echogen metadata), `provenance` (what an engine was built from and for). train, export and
runtime all import this layer; it imports none of them (tests/test_layers.py).
"""
