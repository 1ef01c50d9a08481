"""`echogen-trt export`: a checkpoint's generator to ONNX (FP32, FP16 or both), verified, or to
an INT8 OpenVINO IR calibrated on a CAMUS tree and gated on accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from echogen_trt.artifacts.openvino_ir import IR_SUFFIX
from echogen_trt.artifacts.precision import BF16, EXPORT_CHOICES, EXPORT_DEFAULT, INT8
from echogen_trt.export.onnx_export import DEFAULT_OPSET
from echogen_trt.export.verify import VerificationFailed, VerifyReport
from echogen_trt.option_values import default_note


def format_report(report: VerifyReport) -> str:
    """The verification table: check, value, bound, ok."""
    rows = [("check", "value", "bound", "ok")]
    rows += [(c.name, c.value, c.bound, "yes" if c.ok else "NO") for c in report.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        for r in rows
    ]
    verdict = "passed" if report.ok else "FAILED"
    return "\n".join([f"verification of {report.path}: {verdict}", *lines])


def _describe(result: Any) -> str:
    batch = "dynamic batch" if result.batch is None else f"batch {result.batch}"
    return (
        f"wrote {result.path} ({result.meta.precision}, io={result.meta.io}, {batch}, "
        f"opset {result.opset}): {result.size_bytes / 1e6:.2f} MB in {result.seconds:.1f} s"
    )


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="ONNX file to write (with --precision both, also OUT's .fp16.onnx sibling). With "
    "--precision int8: OUT.xml is an OpenVINO IR (+ .bin; [int8] extra), OUT.onnx an INT8 "
    "ONNX file for ONNX Runtime (no extra).",
)  # fmt: skip
@click.option(
    "--precision", type=click.Choice(EXPORT_CHOICES), default=None,
    help="Weights/compute precision in the file; I/O stays FP32 (or uint8). int8: quantized "
    "after calibration on --calibrate DATA (see --out). bf16: an OpenVINO IR computed in "
    "bfloat16 (CPUs with avx512_bf16 or AMX), gated like int8 on --calibrate DATA's test split. "
    f"{default_note(EXPORT_DEFAULT)}",
)  # fmt: skip
@click.option(
    "--calibrate", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    help="int8: CAMUS-layout tree; its train split calibrates, its test split is held out.",
)  # fmt: skip
@click.option(
    "--force", is_flag=True, default=False,
    help="int8: write the model even when it fails the accuracy gate (PSNR vs FP32 >= 35 dB).",
)  # fmt: skip
@click.option(
    "--dice-gate/--no-dice-gate", default=True,
    help="int8: also require the segmentation-consistency Dice drop vs FP32 <= 0.01 (the "
    "evaluate judge, trained once on the --calibrate tree and cached). [default: on]",
)  # fmt: skip
@click.option(
    "--batch", type=click.IntRange(min=1), default=None,
    help="Fix the batch size (TensorRT DLA needs static shapes). [default: dynamic]",
)  # fmt: skip
@click.option(
    "--fused-io", is_flag=True, default=False,
    help="uint8 (N,H,W) raw labels in, uint8 frames out: label selection and scaling in-graph.",
)  # fmt: skip
@click.option("--opset", type=int, default=None, help=f"ONNX opset. {default_note(DEFAULT_OPSET)}")
@click.option("--no-verify", is_flag=True, default=False, help="Skip the ORT-vs-torch checks.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print a JSON summary.")
def export(
    checkpoint: Path,
    out: Path,
    precision: str | None,
    batch: int | None,
    fused_io: bool,
    opset: int | None,
    no_verify: bool,
    as_json: bool,
    calibrate: Path | None,
    force: bool,
    dice_gate: bool,
) -> None:
    """Export CHECKPOINT's generator to ONNX and verify it against the torch model.

    Verification: ONNX checker, TensorRT op support, I/O signature, dynamic batch, and ONNX
    Runtime vs PyTorch (FP32: max abs error <= 1e-4; FP16: PSNR >= 40 dB).

    INT8 (--out .xml: OpenVINO IR; .onnx: ONNX Runtime): PSNR of INT8 against FP32 on held-out
    masks >= 35 dB and a segmentation-consistency Dice drop <= 0.01, or nothing is written
    (unless --force).

    \b
    Example: echogen-trt export runs/exp/best.pt --out model.onnx --precision both
             echogen-trt export runs/exp/best.pt --out model.int8.xml --precision int8 \
                 --calibrate data/camus
    """
    if precision == BF16:
        _export_bf16(checkpoint, out, calibrate, force, as_json, fused_io, batch, dice_gate)
        return
    if precision == INT8 or calibrate is not None or force:
        _export_int8(
            checkpoint, out, precision, calibrate, force, as_json,
            fused_io=fused_io, batch=batch, dice_gate=dice_gate,
        )  # fmt: skip
        return
    from echogen_trt.export.onnx_export import export_checkpoint

    options: dict[str, Any] = {"batch": batch, "fused_io": fused_io, "verify": not no_verify}
    options |= {k: v for k, v in {"precision": precision, "opset": opset}.items() if v is not None}
    try:
        results = export_checkpoint(checkpoint, out, **options)
    except VerificationFailed as err:
        report = err.report
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))
        raise
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for result in results:
        click.echo(_describe(result))
        if result.verify is not None:
            click.echo(format_report(result.verify))


def _export_bf16(
    checkpoint: Path,
    out: Path,
    calibrate: Path | None,
    force: bool,
    as_json: bool,
    fused_io: bool,
    batch: int | None,
    dice_gate: bool,
) -> None:
    """--precision bf16: convert, gate, write (or refuse and show the report)."""
    from echogen_trt.errors import ConfigError
    from echogen_trt.export.bf16 import export_bf16

    if calibrate is None or fused_io or batch is not None:
        raise ConfigError(
            "--precision bf16 | needs --calibrate DATA (its test split is the gate's held-out "
            "set) and takes no --fused-io or --batch. Expected e.g. --calibrate data/camus."
        )
    try:
        gates = []
        if dice_gate:
            from echogen_trt.evaluate.dice_gate import dice_drop_gate

            gates.append(dice_drop_gate(calibrate))
        result = export_bf16(checkpoint, out, calibrate=calibrate, force=force, gates=gates)
    except VerificationFailed as err:
        report = err.report
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))
        raise
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(
        f"wrote {result.path} (+ .bin) (bf16 on OpenVINO, {result.n_heldout} held-out masks): "
        f"{result.size_bytes / 1e6:.2f} MB in {result.seconds:.1f} s"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(format_report(result.verify))


def _export_int8(
    checkpoint: Path,
    out: Path,
    precision: str | None,
    calibrate: Path | None,
    force: bool,
    as_json: bool,
    *,
    fused_io: bool,
    batch: int | None,
    dice_gate: bool,
) -> None:
    """--precision int8: quantize, gate, write (or refuse and show the report)."""
    from echogen_trt.evaluate.dice_gate import export_int8_gated
    from echogen_trt.export.int8 import check_int8_options

    data = check_int8_options(precision, calibrate, fused_io=fused_io, batch=batch)
    try:
        result = export_int8_gated(
            checkpoint, out, calibrate=data, dice_gate=dice_gate, force=force
        )
    except VerificationFailed as err:
        report = err.report
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))
        raise
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    kept = ", ".join(result.ignored) or "none"
    click.echo(
        f"wrote {result.path}{' (+ .bin)' if result.path.suffix == IR_SUFFIX else ''} "
        f"(int8, {result.n_calibration} calibration masks, "
        f"FP32 layers: {kept}): {result.size_bytes / 1e6:.2f} MB in {result.seconds:.1f} s"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(format_report(result.verify))
