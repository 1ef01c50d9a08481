"""INT8 ONNX for ONNX Runtime, the INT8 path without extra dependencies (export --precision int8
with an .onnx output).

ONNX Runtime's static quantization leaves ConvTranspose in FP32, and the decoder's up-convolutions
are about half of the generator's FLOPs, so every 4x4 stride-2 ConvTranspose is first rewritten as
four 2x2 convolutions, one per output phase, interleaved by DepthToSpace: exact in FP32 (PSNR
144 dB against the original, float rounding). Then `quantize_static` (QDQ) with the recipe that
kept accuracy in `benchmarks/ort_int8_study.py`: per-channel weights, `reduce_range` (7-bit
weights, against the int16 saturation of u8 x s8 products on CPUs without VNNI), percentile
calibration (99.999 %: min-max ranges, ORT's default, lost 6 dB), and the 1-channel tail (the last
up-convolution's four convs and the output conv) kept FP32. The accuracy gate is export.int8's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from echogen_trt.errors import ExportError

# (output row/column parity) -> kernel taps of the 4x4 transposed conv that reach it, top first:
# row 2m is x[m-1] w[3] + x[m] w[1] (pad 1 before), row 2m+1 is x[m] w[2] + x[m+1] w[0] (pad after)
PHASE_TAPS = ((3, 1), (2, 0))


def split_conv_transpose(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Rewrite each ConvTranspose (4x4 kernel, stride 2, pads 1) in place as 4 Conv 2x2 + Concat
    + DepthToSpace (DCR). Returns the model and the new convs' names, graph order."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    convs: list[str] = []
    for node in graph.node:
        if node.op_type != "ConvTranspose":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        shape = (list(attrs.get("kernel_shape", [])), list(attrs.get("strides", [])))
        if shape != ([4, 4], [2, 2]) or list(attrs.get("pads", [0] * 4)) != [1, 1, 1, 1]:
            raise ExportError(
                f"ConvTranspose {node.name} | kernel/strides/pads {shape} "
                f"{list(attrs.get('pads', []))}. Expected 4x4, stride 2, pads 1 (the generator's)."
            )
        weight = numpy_helper.to_array(inits[node.input[1]])  # (Cin, Cout, 4, 4)
        outs = []
        for a in (0, 1):
            for b in (0, 1):
                rows, cols = list(PHASE_TAPS[a]), list(PHASE_TAPS[b])
                kernel = weight[:, :, rows][:, :, :, cols].transpose(1, 0, 2, 3)
                name = f"{node.name}_phase{a}{b}"
                graph.initializer.append(
                    numpy_helper.from_array(np.ascontiguousarray(kernel), f"{name}_w")
                )
                outs.append(f"{node.output[0]}_phase{a}{b}")
                nodes.append(
                    helper.make_node(
                        "Conv", [node.input[0], f"{name}_w", *node.input[2:3]], [outs[-1]],
                        name=name, kernel_shape=[2, 2], pads=[1 - a, 1 - b, a, b],
                    )
                )  # fmt: skip
                convs.append(name)
        phases = f"{node.output[0]}_phases"
        nodes.append(helper.make_node("Concat", outs, [phases], name=f"{node.name}_cat", axis=1))
        nodes.append(
            helper.make_node(
                "DepthToSpace", [phases], [node.output[0]], name=f"{node.name}_d2s",
                blocksize=2, mode="DCR",
            )
        )  # fmt: skip
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return model, convs


def fp32_tail(model: onnx.ModelProto, split_convs: list[str]) -> list[str]:
    """The last up-convolution's four phase convs and the last Conv of the original graph."""
    last = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in split_convs]
    return [*split_convs[-4:], *last[-1:]]


class _Reader:
    """ONNX Runtime CalibrationDataReader over float (N, 1, H, W) inputs, one sample per call."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self._items = iter([{name: x[i : i + 1]} for i in range(len(x))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # part of the reader interface; one pass is all quantize_static takes
        return None


def quantize_onnx(
    fp32_path: str | os.PathLike[str], out_path: str | os.PathLike[str], calibration: np.ndarray
) -> list[str]:
    """Write the INT8 QDQ model of `fp32_path` (float io) to `out_path`; returns the node names
    kept FP32. Metadata_props are carried over by the quantizer."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out = Path(out_path)
    split, convs = split_conv_transpose(onnx.load(os.fspath(fp32_path)))
    staged = out.with_name(out.stem + ".split.onnx")
    onnx.save(split, os.fspath(staged))
    keep = fp32_tail(split, convs)
    name = split.graph.input[0].name
    try:
        quantize_static(
            os.fspath(staged), os.fspath(out), _Reader(name, calibration),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
            calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=keep,
        )  # fmt: skip
    except ValueError as err:  # e.g. percentile histograms of a tensor with a degenerate range
        raise ExportError(
            f"INT8 ONNX {out} | ONNX Runtime's quantizer failed: {err}. Hint: calibrate on more "
            "varied masks, or export an OpenVINO IR instead (--out NAME.xml)."
        ) from err
    finally:
        staged.unlink(missing_ok=True)
    return keep
