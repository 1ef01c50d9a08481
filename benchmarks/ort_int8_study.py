"""Is ONNX Runtime's own INT8 worth shipping as the no-extra-dependency INT8 path? (issue #12, 5)

ORT's static quantization leaves ConvTranspose in FP32, and the decoder's six up-convolutions hold
about half of the generator's FLOPs. Rewritten as four 2x2 convolutions (one per output phase)
whose outputs DepthToSpace interleaves, every up-convolution becomes a Conv ORT quantizes; the
rewrite is exact in FP32 (checked here). This study measures, on one machine in one run:

- accuracy: PSNR of each INT8 variant against the FP32 model on held-out masks of a CAMUS tree,
  for a trained checkpoint's ONNX export (the gate is >= 35 dB, as for the OpenVINO INT8 export);
- speed: compute frames/s of each variant against ORT FP32 on a reference-size ONNX file, in
  interleaved rounds (each round times every variant once).

Variants: ORT's defaults on the original graph (ConvTranspose stays FP32); on the rewritten graph
with ORT's defaults; and with the counterparts of the OpenVINO recipe (per-channel weights,
`reduce_range` = 7-bit weights against the int16 saturation of u8*s8 on CPUs without VNNI,
the 1-channel tail kept FP32). Prints a JSON summary; writes nothing else unless --out.

Run: `PYTHONPATH=src python benchmarks/ort_int8_study.py --trained T.onnx --reference R.onnx
--data TREE [--out study.json]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from echogen_trt.export.ort_int8 import fp32_tail, split_conv_transpose
from echogen_trt.export.verify import psnr_db


def session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, x: np.ndarray, batch: int = 8) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate(
        [sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    )


class Reader:
    """ORT CalibrationDataReader over float (N, 1, H, W) inputs, one sample per call."""

    def __init__(self, x: np.ndarray) -> None:
        self.items = iter([{"mask": x[i : i + 1]} for i in range(len(x))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def quantize(src: Path, dst: Path, calib: np.ndarray, exclude: list[str], **kw: Any) -> Any:
    """The quantized file, or the error text (percentile calibration fails on tensors whose
    range is degenerate, as in a random-weight model whose output is nearly constant)."""
    try:
        return _quantize(src, dst, calib, exclude, **kw)
    except ValueError as err:
        return f"failed: {err}"


def _quantize(src: Path, dst: Path, calib: np.ndarray, exclude: list[str], **kw: Any) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if kw.pop("percentile", False):
        from onnxruntime.quantization import CalibrationMethod

        kw["calibrate_method"] = CalibrationMethod.Percentile
    quantize_static(
        str(src), str(dst), Reader(calib), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude, **kw,
    )  # fmt: skip
    return dst


def variants(fp32: Path, folder: Path, calib: np.ndarray, tag: str) -> dict[str, Any]:
    """The INT8 files of one FP32 model: name -> path."""
    split, convs = split_conv_transpose(onnx.load(str(fp32)))
    split_path = folder / f"{tag}.split.onnx"
    onnx.save(split, str(split_path))
    tail = fp32_tail(split, convs)  # the 1-channel last up-convolution and the output conv
    rr = {"per_channel": True, "reduce_range": True}
    return {
        "fp32": fp32,
        "fp32 split (exactness)": split_path,
        "ort default": quantize(fp32, folder / f"{tag}.q0.onnx", calib, []),
        "split, ort default": quantize(split_path, folder / f"{tag}.q1.onnx", calib, []),
        "split, per-channel + reduce_range": quantize(
            split_path, folder / f"{tag}.q2.onnx", calib, [], **rr
        ),
        "split, per-channel + reduce_range + FP32 tail": quantize(
            split_path, folder / f"{tag}.q3.onnx", calib, tail, **rr
        ),
        "ConvTranspose FP32, percentile": quantize(
            fp32, folder / f"{tag}.q4.onnx", calib, [], percentile=True
        ),
        "split, percentile": quantize(
            split_path, folder / f"{tag}.q5.onnx", calib, [], percentile=True
        ),
        "split, per-channel + reduce_range + percentile": quantize(
            split_path, folder / f"{tag}.q6.onnx", calib, [], percentile=True, **rr
        ),
        "shipped: split, per-channel + reduce_range + percentile + FP32 tail": quantize(
            split_path, folder / f"{tag}.q7.onnx", calib, tail, percentile=True, **rr
        ),
    }


def accuracy(files: dict[str, Any], held: np.ndarray) -> dict[str, Any]:
    ref = run(session(files["fp32"]), held)
    return {
        k: round(psnr_db(run(session(p), held), ref), 2) if isinstance(p, Path) else p
        for k, p in files.items()
        if k != "fp32"
    }


def speed(files: dict[str, Any], batch: int, rounds: int, seconds: float) -> dict[str, Any]:
    size = session(files["fp32"]).get_inputs()[0].shape[-1]
    x = np.random.default_rng(0).integers(0, 4, (batch, 1, size, size)).astype(np.float32)
    sessions = {
        k: session(p) for k, p in files.items() if "exactness" not in k and isinstance(p, Path)
    }
    fps: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(None, {"mask": x})
    for _ in range(rounds):
        for k, s in sessions.items():
            n, start = 0, time.perf_counter()
            while n < 3 or time.perf_counter() - start < seconds:
                s.run(None, {"mask": x})
                n += 1
            fps[k].append(n * batch / (time.perf_counter() - start))
    base = fps["fp32"]
    return {
        k: {
            "fps_rounds": [round(v, 3) for v in f],
            "ratio_rounds": [round(a / b, 3) for a, b in zip(f, base, strict=True)],
            "ratio_median": round(
                statistics.median(a / b for a, b in zip(f, base, strict=True)), 3
            ),
        }
        for k, f in fps.items()
    }


def main() -> None:
    from echogen_trt.export.int8 import masks_from_tree

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trained", type=Path, required=True)
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from echogen_trt.artifacts.onnx_file import read_meta

    result: dict[str, Any] = {"onnxruntime": ort.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for tag, path in (("trained", args.trained), ("reference", args.reference)):
            meta = read_meta(path)
            kw: dict[str, Any] = {"experiment": meta.experiment, "size": tuple(meta.input_size)}
            calib = masks_from_tree(args.data, "train", **kw)[:, None].astype(np.float32)
            files = variants(path, folder, calib, tag)
            if tag == "trained":
                held = masks_from_tree(args.data, "test", **kw)[:, None].astype(np.float32)
                result["psnr_db_vs_fp32"] = accuracy(files, held)
                print(json.dumps(result, indent=2), flush=True)
                result["n_calibration"], result["n_heldout"] = len(calib), len(held)
            else:
                result["reference_failed"] = {k: p for k, p in files.items() if isinstance(p, str)}
                result["speed_batch1"] = speed(files, 1, args.rounds, args.seconds)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
