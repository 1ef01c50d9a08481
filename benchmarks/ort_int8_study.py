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
from onnx import helper, numpy_helper

from echogen_trt.export.verify import psnr_db


def split_conv_transpose(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Each ConvTranspose (4x4, stride 2, pads 1) -> 4 Conv 2x2 + Concat + DepthToSpace (DCR).

    Output row 2m uses x[m-1] w[3] + x[m] w[1] (pad top 1), row 2m+1 uses x[m] w[2] + x[m+1] w[0]
    (pad bottom 1); the same for columns. Returns the model and, per rewritten node, the names of
    its four convs (last node last)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    taps, nodes, groups = ((3, 1), (2, 0)), [], []
    for node in graph.node:
        if node.op_type != "ConvTranspose":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert list(attrs.get("strides", [])) == [2, 2] and list(attrs["pads"]) == [1, 1, 1, 1]
        w = numpy_helper.to_array(inits[node.input[1]])  # (Cin, Cout, 4, 4)
        outs, names = [], []
        for a in (0, 1):
            for b in (0, 1):
                k = w[:, :, list(taps[a])][:, :, :, list(taps[b])].transpose(1, 0, 2, 3)
                wname = f"{node.name}_p{a}{b}_w"
                graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(k), wname))
                out = f"{node.output[0]}_p{a}{b}"
                ins = [node.input[0], wname, *node.input[2:3]]
                name = f"{node.name}_p{a}{b}"
                nodes.append(
                    helper.make_node(
                        "Conv", ins, [out], name=name, kernel_shape=[2, 2],
                        pads=[1 - a, 1 - b, a, b],
                    )
                )  # fmt: skip
                outs.append(out)
                names.append(name)
        cat = f"{node.output[0]}_phases"
        nodes.append(helper.make_node("Concat", outs, [cat], name=f"{node.name}_cat", axis=1))
        nodes.append(
            helper.make_node(
                "DepthToSpace", [cat], [node.output[0]], name=f"{node.name}_d2s",
                blocksize=2, mode="DCR",
            )
        )  # fmt: skip
        groups.append(names)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model, [n for g in groups for n in g]


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


def quantize(src: Path, dst: Path, calib: np.ndarray, exclude: list[str], **kw: Any) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src), str(dst), Reader(calib), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude, **kw,
    )  # fmt: skip
    return dst


def variants(fp32: Path, folder: Path, calib: np.ndarray, tag: str) -> dict[str, Path]:
    """The INT8 files of one FP32 model: name -> path."""
    model = onnx.load(str(fp32))
    split, convs = split_conv_transpose(onnx.load(str(fp32)))
    split_path = folder / f"{tag}.split.onnx"
    onnx.save(split, str(split_path))
    last_conv = [n.name for n in model.graph.node if n.op_type == "Conv"][-1]
    tail = [*convs[-4:], last_conv]  # the 1-channel last up-convolution and the output conv
    return {
        "fp32": fp32,
        "fp32 split (exactness)": split_path,
        "ort default": quantize(fp32, folder / f"{tag}.q0.onnx", calib, []),
        "split, ort default": quantize(split_path, folder / f"{tag}.q1.onnx", calib, []),
        "split, per-channel + reduce_range": quantize(
            split_path, folder / f"{tag}.q2.onnx", calib, [], per_channel=True, reduce_range=True
        ),
        "split, per-channel + reduce_range + FP32 tail": quantize(
            split_path,
            folder / f"{tag}.q3.onnx",
            calib,
            tail,
            per_channel=True,
            reduce_range=True,
        ),
    }


def accuracy(files: dict[str, Path], held: np.ndarray) -> dict[str, float]:
    ref = run(session(files["fp32"]), held)
    return {k: psnr_db(run(session(p), held), ref) for k, p in files.items() if k != "fp32"}


def speed(files: dict[str, Path], batch: int, rounds: int, seconds: float) -> dict[str, Any]:
    size = session(files["fp32"]).get_inputs()[0].shape[-1]
    x = np.random.default_rng(0).integers(0, 4, (batch, 1, size, size)).astype(np.float32)
    sessions = {k: session(p) for k, p in files.items() if "exactness" not in k}
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
                result["psnr_db_vs_fp32"] = {
                    k: round(v, 2) for k, v in accuracy(files, held).items()
                }
                result["n_calibration"], result["n_heldout"] = len(calib), len(held)
            else:
                result["speed_batch1"] = speed(files, 1, args.rounds, args.seconds)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
