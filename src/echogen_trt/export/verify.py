"""Prove an exported ONNX file is the generator it came from, before anyone builds an engine.

Checks, each with its measured value and bound: the ONNX checker (full_check), the TensorRT op
list, the I/O signature against the metadata, the output range, batch-1 vs batched agreement
(dynamic batch), and ONNX Runtime against the torch FP32 generator on random label masks and
phantom-like anatomy masks:

- FP32, float io: max |ORT - torch| <= 1e-4. Measured with BN statistics calibrated so the output
  spans [0, 1]: 1.4e-6 at 64x64 (width 4), about 1e-5 at the 256x256 reference (width 64); the
  bound leaves room for other CPUs' kernels and still catches any changed weight.
- FP32, uint8 io: max |ORT - round(255 * torch)| <= 1 count (a value near .5 may round either way).
- FP16: PSNR of the FP16 output against the FP32 torch output >= 40 dB. Measured: 72.8 dB at
  64x64, 65-66 dB at 256x256 (float io), 58 dB with uint8 io (8-bit rounding included). 40 dB
  (1 % RMS of the range) is far below a visible change and still fails a conversion that
  overflowed or lost a layer.

A failed check raises `VerificationFailed` (an ExportError that carries the report) naming every
failed check with its number.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import input_batch, load_model, read_meta
from echogen_trt.artifacts.precision import FP16
from echogen_trt.data.phantom_masks import phantom_mask
from echogen_trt.errors import ExportError
from echogen_trt.export.ops import unsupported_ops
from echogen_trt.metrics import psnr_db
from echogen_trt.runtime.mask_to_echo import MaskToEcho
from echogen_trt.runtime.model_tensors import batch_from_masks

log = logging.getLogger(__name__)

FP32_MAX_ABS_ERR = 1e-4
FP16_MIN_PSNR_DB = 40.0
UINT8_MAX_DIFF = 1
FP16_BATCH_ATOL = 2e-3  # two FP16 ulps near 1.0: kernels may block a batch differently

# float32 (N, 1, H, W) label values, unkept labels zeroed -> float32 (N, 1, H, W) in [0, 1]
Reference = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Check:
    """One row of the report: what was checked, the measured value, the bound, and the verdict."""

    name: str
    value: str
    bound: str
    ok: bool
    number: float | None = None  # the measured value as a number, when there is one


@dataclass
class VerifyReport:
    """Every check run on one ONNX file."""

    path: Path
    precision: str
    io: str
    batch: int | None
    n_masks: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check:
        """The check called `name`; KeyError listing the names if absent."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"{name!r} not in {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "precision": self.precision,
            "io": self.io,
            "batch": self.batch,
            "n_masks": self.n_masks,
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
        }


class VerificationFailed(ExportError):
    """An exported file failed a check; `report` holds every check and its number."""

    def __init__(self, message: str, report: VerifyReport) -> None:
        super().__init__(message)
        self.report = report


# --- masks and references ------------------------------------------------------------------


def default_masks(
    size: tuple[int, int], n_random: int = 2, n_phantom: int = 2, seed: int = 0
) -> np.ndarray:
    """uint8 (N, H, W): uniform random labels 0..3 and phantom-like anatomy, reproducibly."""
    rng = np.random.default_rng(seed)
    h, w = size
    noise = [rng.integers(0, 4, (h, w), dtype=np.uint8) for _ in range(n_random)]
    phantoms = [phantom_mask((h, w), rng) for _ in range(n_phantom)]
    return np.stack(noise + phantoms)


def reference_from_torch(module: Any) -> Reference:
    """Wrap a torch generator as a numpy reference (eval mode, no grad, its own device)."""
    import torch

    module.eval()
    device = next(iter(module.parameters())).device

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad(), warnings.catch_warnings():
            # torch's notice that padding="same" with an even kernel copies the input
            warnings.filterwarnings("ignore", message=".*padding='same'.*", category=UserWarning)
            out = module(torch.from_numpy(x).to(device))
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    return run


def _as_reference(reference: Any) -> Reference | None:
    if reference is None or not hasattr(reference, "parameters"):
        return reference  # type: ignore[no-any-return]
    return reference_from_torch(reference)


# --- running the model ---------------------------------------------------------------------


def _open(path: Path, n_masks: int) -> MaskToEcho:
    """The file on ONNX Runtime's CPU provider through the runtime's one path from masks to
    outputs (label selection, packing, the fixed-batch padding rule), as `generate` serves it."""
    return MaskToEcho(path, batch_size=max(n_masks, 1), providers=["cpu"]).open()


# --- the checks ----------------------------------------------------------------------------


def _at_most(name: str, value: float, bound: float) -> Check:
    return Check(name, f"{value:.3g}", f"<= {bound:g}", ok=value <= bound, number=value)


def _at_least(name: str, value: float, bound: float, unit: str = "") -> Check:
    text, bound_text = f"{value:.1f}{unit}", f">= {bound:g}{unit}"
    return Check(name, text, bound_text, ok=value >= bound, number=value)


def _check_checker(model: onnx.ModelProto) -> Check:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as err:  # ValidationError or InferenceError
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Check("onnx checker", first[:120], "valid (full_check)", ok=False)
    return Check("onnx checker", "valid", "valid (full_check)", ok=True)


def _check_ops(model: onnx.ModelProto) -> Check:
    bad = unsupported_ops(model)
    value = ", ".join(bad) if bad else "none"
    return Check("ops unsupported by TensorRT", value, "none", ok=not bad, number=len(bad))


def _signature(value: onnx.ValueInfoProto) -> tuple[str, int, list[int | str]]:
    t = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
    return value.name, t.elem_type, dims


def _dtype_name(elem_type: int) -> str:
    return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type).name)


def _check_io(model: onnx.ModelProto, meta: ModelMeta) -> Check:
    """Names, dtypes and ranks against the metadata, so a runtime can trust `meta` alone."""
    h, w = meta.input_size
    elem = onnx.TensorProto.UINT8 if meta.io == "uint8" else onnx.TensorProto.FLOAT
    spatial: list[int | str] = [h, w] if meta.io == "uint8" else [1, h, w]
    want = [(meta.input_name, elem, spatial), (meta.output_name, elem, spatial)]
    ios = list(model.graph.input) + list(model.graph.output)
    got = [_signature(v) for v in ios]
    ok = len(got) == 2 and all(
        g[0] == n and g[1] == e and g[2][1:] == s for g, (n, e, s) in zip(got, want, strict=True)
    )
    text = " -> ".join(f"{n} {_dtype_name(e)}[{','.join(map(str, d))}]" for n, e, d in got)
    bound = f"{_dtype_name(elem)} {want[0][0]} -> {want[1][0]}, {h}x{w}"
    return Check("inputs/outputs", text, bound, ok=ok)


def _check_range(y: np.ndarray, io: str) -> Check:
    if io == "uint8":
        return Check("output dtype", str(y.dtype), "uint8", ok=y.dtype == np.uint8)
    finite = bool(np.isfinite(y).all())
    lo, hi = (float(y.min()), float(y.max())) if finite else (float("nan"), float("nan"))
    ok = finite and lo >= 0.0 and hi <= 1.0
    return Check("output range", f"[{lo:.4f}, {hi:.4f}]", "finite, within [0, 1]", ok=ok)


def _check_batch(gen: MaskToEcho, x: np.ndarray, y: np.ndarray, meta: ModelMeta) -> Check:
    """Batch 1 must give what the same mask gives inside a batch (dynamic axis really works)."""
    single = gen.outputs(x[:1], check_labels=False)
    diff = float(np.abs(single.astype(np.float64) - y[:1].astype(np.float64)).max())
    if meta.io == "uint8":
        bound: float = UINT8_MAX_DIFF
    else:
        bound = FP16_BATCH_ATOL if meta.precision == FP16 else FP32_MAX_ABS_ERR
    return _at_most(f"batch 1 vs batch {len(x)}", diff, bound)


def _check_reference(
    y: np.ndarray, ref: np.ndarray, meta: ModelMeta, max_abs_err: float, min_psnr_db: float
) -> list[Check]:
    """ORT output against the torch FP32 output (float (N, 1, H, W) in [0, 1])."""
    if meta.io == "uint8":
        ref_out = np.round(np.clip(ref[:, 0] * 255.0, 0.0, 255.0))
        y_unit, ref_unit = y.astype(np.float64) / 255.0, ref[:, 0]
    else:
        ref_out, y_unit, ref_unit = ref, y, ref
    err = float(np.abs(y.astype(np.float64) - ref_out.astype(np.float64)).max())
    psnr = psnr_db(y_unit, ref_unit)
    if meta.precision == FP16:
        return [
            _at_least("PSNR fp16 vs torch fp32", psnr, min_psnr_db, unit=" dB"),
            Check("max abs err vs torch", f"{err:.3g}", "(reported)", ok=True, number=err),
        ]
    if meta.io == "uint8":
        return [_at_most("max abs diff vs torch (counts)", err, UINT8_MAX_DIFF)]
    return [_at_most("max abs err vs torch", err, max_abs_err)]


def _failure_message(path: Path, report: VerifyReport) -> str:
    parts = "; ".join(f"{c.name}: {c.value} (bound {c.bound})" for c in report.failures())
    return (
        f"ONNX file {path} | failed verification: {parts}. The file is kept for inspection. "
        "Hint: re-export from the checkpoint; if it persists, run with -vv and report it."
    )


def verify_onnx(
    onnx_path: str | os.PathLike[str],
    reference: Any = None,
    masks: np.ndarray | None = None,
    *,
    max_abs_err: float = FP32_MAX_ABS_ERR,
    min_psnr_db: float = FP16_MIN_PSNR_DB,
    raise_on_failure: bool = True,
) -> VerifyReport:
    """Check an exported file; raise VerificationFailed (with the report) when a check fails.

    reference: the torch FP32 generator, or a `Reference` callable, or None (numeric comparison
    skipped). masks: uint8 (N, H, W) raw labels 0..3; default `default_masks(meta.input_size)`.
    """
    path = Path(onnx_path)
    model = load_model(path)
    meta = read_meta(model, source=f"ONNX file {path}")
    batch = input_batch(model)
    masks = default_masks(meta.input_size) if masks is None else np.asarray(masks, np.uint8)
    report = VerifyReport(path, meta.precision, meta.io, batch, len(masks))
    report.checks += [_check_checker(model), _check_ops(model), _check_io(model, meta)]
    if report.ok:  # only a well-formed file with the promised signature can be run
        report.checks += _numeric_checks(
            path, meta, masks, batch, reference, max_abs_err, min_psnr_db
        )
    log.info("verified %s: %s", path, "ok" if report.ok else "FAILED")
    if raise_on_failure and not report.ok:
        raise VerificationFailed(_failure_message(path, report), report)
    return report


def _numeric_checks(
    path: Path,
    meta: ModelMeta,
    masks: np.ndarray,
    batch: int | None,
    reference: Any,
    max_abs_err: float,
    min_psnr_db: float,
) -> list[Check]:
    with _open(path, len(masks)) as gen:
        y = gen.outputs(masks, check_labels=False)
        checks = [_check_range(y, meta.io)]
        if batch is None and len(masks) > 1:
            checks.append(_check_batch(gen, masks, y, meta))
    ref_fn = _as_reference(reference)
    if ref_fn is None:
        checks.append(Check("torch reference", "none given: comparison skipped", "-", ok=True))
        return checks
    ref = ref_fn(batch_from_masks(masks, replace(meta, io="float")))
    return checks + _check_reference(y, ref, meta, max_abs_err, min_psnr_db)
