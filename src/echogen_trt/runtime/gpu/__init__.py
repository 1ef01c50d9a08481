"""GPU driver code of the runtime: CUDA memory and streams (cuda_mem), TensorRT API helpers
(trt_api). Used by the TensorRT backend and by export's engine builder."""
