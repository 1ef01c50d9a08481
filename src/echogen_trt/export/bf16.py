"""BF16 model of a checkpoint for OpenVINO on CPUs with avx512_bf16 or AMX, gated like INT8.

OpenVINO computes a model in bfloat16 when compiled with `INFERENCE_PRECISION_HINT=bf16`; the
backend does so only for an IR whose metadata says precision "bf16", which only this export
writes, after the same gate as INT8: frames of held-out masks (the `test` split of `--calibrate
DATA`) against the FP32 model's, PSNR >= 35 dB, plus the caller's gates (the Dice drop). The
weights stay FP32 in the .bin (OpenVINO converts them when compiling), so the same file runs
anywhere; on a CPU without BF16 OpenVINO would run it in FP32, so the export refuses there.

Measured on a 2-vCPU Xeon with AMX (benchmarks/results/cpu-frontier-*.md): see README, "OpenVINO
and the CPU". ONNX Runtime gets no BF16 path: its CPU provider has no BF16 convolution kernels.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.openvino_ir import IR_SUFFIX, load_model, save_ir, weights_path
from echogen_trt.artifacts.precision import BF16, FP32
from echogen_trt.errors import BackendUnavailable, ConfigError
from echogen_trt.export.int8 import INT8_MIN_PSNR_DB, Gate, _mask_sets, _run
from echogen_trt.export.verify import Check, VerificationFailed, VerifyReport
from echogen_trt.fileio import check_output_path, locked_temp_dir
from echogen_trt.metrics import psnr_db
from echogen_trt.runtime.cpu import cpu_flags
from echogen_trt.runtime.registry import ONNX_SUFFIX, resolve_kind

log = logging.getLogger(__name__)

BF16_MIN_PSNR_DB = INT8_MIN_PSNR_DB
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass
class Bf16Result:
    """What `export_bf16` measured and (unless refused) wrote."""

    path: Path
    meta: ModelMeta
    verify: VerifyReport
    n_heldout: int
    size_bytes: int
    seconds: float
    written: bool = False
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": "openvino ir",
            "bin": str(weights_path(self.path)),
            "precision": self.meta.precision,
            "n_heldout": self.n_heldout,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "written": self.written,
            "forced": self.forced,
            "verify": self.verify.to_dict(),
            "notes": list(self.notes),
        }


def check_bf16_cpu(flags: set[str] | None = None) -> None:
    """ConfigError unless this CPU computes BF16 natively (else OpenVINO would run FP32)."""
    flags = cpu_flags() if flags is None else flags
    if not any(f in flags for f in BF16_FLAGS):
        raise ConfigError(
            "--precision bf16 | this CPU has neither avx512_bf16 nor amx_bf16, so OpenVINO "
            "would compute the model in FP32. Expected a CPU with BF16 (Intel Cooper Lake or "
            "Sapphire Rapids and later, AMD Zen 4 and later). Hint: use --precision int8 or fp32."
        )


def export_bf16(
    ckpt_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    calibrate: str | os.PathLike[str] | None = None,
    heldout: Any = None,
    min_psnr_db: float = BF16_MIN_PSNR_DB,
    gates: Sequence[Gate] = (),
    force: bool = False,
    split_source: str = "auto",
    flags: set[str] | None = None,
) -> Bf16Result:
    """Write `out_path` (.xml + .bin) as a BF16 OpenVINO IR of the checkpoint's generator, if
    its frames pass the gate against FP32 on held-out masks (`calibrate`'s test split, or
    `heldout` uint8 (N, H, W) masks); otherwise VerificationFailed carries the report."""
    from echogen_trt.export.onnx_export import export_checkpoint

    start = time.perf_counter()
    out = Path(out_path)
    check_output_path(out, inputs=[ckpt_path], suffixes=(IR_SUFFIX,), what="BF16 output")
    check_bf16_cpu(flags)
    try:
        import openvino  # noqa: F401
    except ImportError as err:
        raise BackendUnavailable(
            f"bf16 export | {err}. Hint: `pip install 'echogen-trt[openvino]'`."
        ) from err
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked_temp_dir(out.parent, ".bf16-") as tmp:
        fp32_onnx = Path(tmp) / f"fp32{ONNX_SUFFIX}"
        [fp32] = export_checkpoint(ckpt_path, fp32_onnx, precision=FP32)
        meta = replace(fp32.meta, precision=BF16)
        _, held = _mask_sets(fp32.meta, calibrate, heldout[:1] if heldout is not None else None,
                             heldout, split_source)  # fmt: skip
        staged = Path(tmp) / out.name
        save_ir(load_model(fp32_onnx), staged, meta)
        kind = resolve_kind(staged)  # the FP32 reference runs on the same backend, in FP32
        value = psnr_db(_run(staged, held, kind), _run(fp32_onnx, held, kind))
        report = VerifyReport(out, BF16, meta.io, None, len(held))
        report.checks.append(
            Check("PSNR bf16 vs fp32 (held-out masks)", f"{value:.1f} dB",
                  f">= {min_psnr_db:g} dB", ok=value >= min_psnr_db, number=value)
        )  # fmt: skip
        report.checks += [gate(fp32_onnx, staged) for gate in gates]
        result = Bf16Result(out, meta, report, len(held), 0, 0.0, forced=force and not report.ok)
        if not report.ok and not force:
            parts = "; ".join(f"{c.name}: {c.value} (bound {c.bound})" for c in report.failures())
            raise VerificationFailed(
                f"BF16 model {out} | failed the accuracy gate: {parts}. Nothing was written. "
                "Hint: serve the FP32 model, or pass --force to write it anyway.",
                report,
            )
        shutil.move(weights_path(staged), weights_path(out))
        shutil.move(staged, out)
    result.written = True
    result.size_bytes = out.stat().st_size + weights_path(out).stat().st_size
    result.seconds = time.perf_counter() - start
    if result.forced:
        result.notes.append("written with --force although the accuracy gate failed")
    log.info("wrote %s (bf16) in %.1f s", out, result.seconds)
    return result
