"""INT8 model of a checkpoint, gated on accuracy: an OpenVINO IR quantized by NNCF (`.xml`
output), or an ONNX file for ONNX Runtime (`.onnx` output, no extra dependency: export.ort_int8).

Steps: the checkpoint's FP32 ONNX export (verified against torch like every export) is read by
OpenVINO; NNCF calibrates activation ranges on masks from the `train` split of a CAMUS-layout
tree and quantizes; the INT8 model and the FP32 model then generate frames for the held-out
masks (the `test` split: other patients) and the PSNR of INT8 against FP32 must be >= 35 dB
(plus any extra gates the caller adds, e.g. the segmentation-consistency Dice drop). A model
that fails is not written unless `force`; the report says why either way.

The recipe (`Int8Recipe`) is the one that keeps accuracy on CPUs without VNNI. Their INT8 dot
products (AVX2/AVX-512 `vpmaddubsw`) add pairs of u8*s8 products in saturating int16, so NNCF's
overflow fix (weights quantized to 7 bits in the first layers) is on; the MIXED preset
(asymmetric activations: after LeakyReLU/ReLU and BatchNorm they are not centred on zero); and
the last up-convolution and the output convolution (1 channel each, a negligible share of the
FLOPs, but every output pixel goes through them) stay FP32. Measured figures: README, "INT8 on
the CPU"; export/int8 tests cover the gate.

The `.onnx` path (export.ort_int8) calibrates and gates the same way; the FP32 reference and the
candidate then run on ONNX Runtime. nncf and openvino are imported inside the functions (extras
`[int8]` and `[openvino]`), only for `.xml` outputs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import load_model as load_onnx
from echogen_trt.artifacts.onnx_file import save_model, write_meta
from echogen_trt.artifacts.openvino_ir import IR_SUFFIX, load_model, save_ir, weights_path
from echogen_trt.artifacts.precision import EXPORT_DEFAULT, FP32, INT8
from echogen_trt.data.splits import check_disjoint
from echogen_trt.errors import BackendUnavailable, ConfigError, ExportError
from echogen_trt.export.verify import Check, VerificationFailed, VerifyReport
from echogen_trt.fileio import check_output_path, check_outputs, locked_temp_dir
from echogen_trt.metrics import psnr_db
from echogen_trt.runtime.mask_to_echo import MaskToEcho
from echogen_trt.runtime.model_files import model_files
from echogen_trt.runtime.model_tensors import batch_from_masks
from echogen_trt.runtime.registry import ONNX_SUFFIX, resolve_kind

log = logging.getLogger(__name__)

INT8_MIN_PSNR_DB = 35.0
INT8_HINT = "`pip install 'echogen-trt[int8]'` (NNCF and OpenVINO)"
PRESETS = ("mixed", "performance")
# (fp32 ONNX, candidate IR) -> one row of the report; e.g. the evaluate step's Dice drop
Gate = Callable[[Path, Path], Check]


@dataclass(frozen=True)
class Int8Recipe:
    """How NNCF quantizes. The defaults are the accuracy-preserving recipe (module docstring);
    `Int8Recipe(preset="performance", overflow_fix=False, fp32_tail=False)` is NNCF's default."""

    preset: str = "mixed"
    overflow_fix: bool = True
    fp32_tail: bool = True  # keep the last up-convolution and the output convolution in FP32
    subset_size: int = 300  # calibration masks used at most

    def check(self) -> Int8Recipe:
        if self.preset not in PRESETS or self.subset_size < 1:
            raise ConfigError(
                f"int8 recipe | preset {self.preset!r}, subset_size {self.subset_size}. "
                f"Expected preset one of {', '.join(PRESETS)} and subset_size >= 1."
            )
        return self


@dataclass
class Int8Result:
    """What `export_int8` measured and (unless refused) wrote."""

    path: Path
    meta: ModelMeta
    recipe: Int8Recipe
    verify: VerifyReport
    n_calibration: int
    n_heldout: int
    ignored: list[str]
    size_bytes: int
    seconds: float
    written: bool
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's --json output)."""
        ir = self.path.suffix.lower() == IR_SUFFIX
        return {
            "path": str(self.path),
            "format": "openvino ir" if ir else "onnx (onnxruntime)",
            "bin": str(weights_path(self.path)) if ir else None,
            "precision": self.meta.precision,
            "io": self.meta.io,
            "recipe": asdict(self.recipe),
            "n_calibration": self.n_calibration,
            "n_heldout": self.n_heldout,
            "fp32_layers": self.ignored,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "written": self.written,
            "forced": self.forced,
            "meta": asdict(self.meta),
            "verify": self.verify.to_dict(),
            "notes": list(self.notes),
        }


def require_nncf() -> Any:
    """The nncf module, or BackendUnavailable naming the extra."""
    try:
        import nncf
        import openvino  # noqa: F401  (nncf quantizes OpenVINO models; both come with [int8])
    except ImportError as err:
        raise BackendUnavailable(f"int8 export | {err}. Hint: {INT8_HINT}.") from err
    return nncf


def fp32_tail(model: Any) -> list[str]:
    """Names of the last transposed convolution and the last convolution of an
    `openvino.Model`: the 1-channel up-convolution and output convolution kept FP32."""
    ops = list(model.get_ordered_ops())
    names = []
    for kind in ("ConvolutionBackpropData", "Convolution"):
        found = [op.get_friendly_name() for op in ops if op.get_type_name() == kind]
        names += found[-1:]
    return names


def quantize(model: Any, calibration: np.ndarray, recipe: Int8Recipe) -> tuple[Any, list[str]]:
    """(INT8 `openvino.Model`, names kept FP32): NNCF post-training quantization of `model` on
    `calibration` (model inputs, one sample per row)."""
    nncf = require_nncf()
    recipe.check()
    ignored = fp32_tail(model) if recipe.fp32_tail else []
    samples = [calibration[i : i + 1] for i in range(len(calibration))]
    advanced = nncf.AdvancedQuantizationParameters(
        overflow_fix=nncf.OverflowFix.ENABLE if recipe.overflow_fix else nncf.OverflowFix.DISABLE
    )
    preset = {"mixed": nncf.QuantizationPreset.MIXED, "performance": None}[recipe.preset]
    # nncf logs INFO lines through its own stdout handler and draws progress bars on stdout:
    # keep stdout for the command's output (--json), show the progress on stderr.
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(
                model,
                nncf.Dataset(samples),
                preset=preset,
                subset_size=min(recipe.subset_size, len(samples)),
                ignored_scope=nncf.IgnoredScope(names=ignored) if ignored else None,
                advanced_parameters=advanced,
            )
    finally:
        nncf_log.setLevel(level)
    return quantized, ignored


def masks_from_tree(root: str | os.PathLike[str], split: str, **options: Any) -> np.ndarray:
    """uint8 (N, H, W) masks of one split of a CAMUS-layout tree, unkept labels zeroed
    (`split_masks`' options: experiment, size, view, phases, split_source)."""
    return split_masks(root, split, **options)[0]


def split_masks(
    root: str | os.PathLike[str],
    split: str,
    *,
    experiment: str,
    size: tuple[int, int],
    view: str = "4CH",
    phases: Sequence[str] = ("ED", "ES"),
    split_source: str = "auto",
) -> tuple[np.ndarray, list[str]]:
    """(uint8 (N, H, W) masks of one split, unkept labels zeroed, their patients): the patients
    let the caller check that calibration and held-out sets are disjoint."""
    from echogen_trt.data.dataset import load_pairs

    sets = [
        load_pairs(
            Path(root), experiment=experiment, split=split, view=view, phase=phase,
            size=size, split_source=split_source,
        )
        for phase in phases
    ]  # fmt: skip
    return np.concatenate([s.masks for s in sets]), sorted({p for s in sets for p in s.patients})


def _run(path: Path, masks: np.ndarray, kind: str, batch: int = 8) -> np.ndarray:
    """float (N, 1, H, W) outputs of `path` served by the `kind` backend, through the runtime's
    one path from masks (labels selected, batched as `generate` does)."""
    with MaskToEcho(path, kind, batch_size=batch) as gen:
        return gen.outputs(masks, check_labels=False)


def check_int8_options(
    precision: str | None, calibrate: Path | None, *, fused_io: bool, batch: int | None
) -> Path:
    """The calibration tree, or ConfigError for `export` options that do not go with INT8 (or
    INT8-only options given without it), before any work."""
    if precision != INT8:
        raise ConfigError(
            "--calibrate/--force | only apply to --precision int8. "
            f"Got --precision {precision or EXPORT_DEFAULT}. Hint: add --precision int8."
        )
    if calibrate is None or fused_io or batch is not None:
        raise ConfigError(
            "--precision int8 | needs --calibrate DATA and takes no --fused-io or --batch "
            "(the IR has float io and a dynamic batch). Expected e.g. --calibrate data/camus."
        )
    return calibrate


def psnr_gate(fp32: np.ndarray, int8: np.ndarray, min_psnr_db: float) -> Check:
    """PSNR of the INT8 output against the FP32 output (both in [0, 1]) as a report row."""
    value = psnr_db(int8, fp32)
    return Check(
        "PSNR int8 vs fp32 (held-out masks)",
        f"{value:.1f} dB",
        f">= {min_psnr_db:g} dB",
        ok=value >= min_psnr_db,
        number=value,
    )


def _refusal(out: Path, report: VerifyReport) -> str:
    parts = "; ".join(f"{c.name}: {c.value} (bound {c.bound})" for c in report.failures())
    return (
        f"INT8 model {out} | failed the accuracy gate: {parts}. Nothing was written. Hint: "
        "calibrate on more (and more varied) masks, keep the default recipe, or pass --force "
        "to write it anyway."
    )


def export_int8(
    ckpt_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    calibrate: str | os.PathLike[str] | None = None,
    calibration: np.ndarray | None = None,
    heldout: np.ndarray | None = None,
    recipe: Int8Recipe | None = None,
    min_psnr_db: float = INT8_MIN_PSNR_DB,
    gates: Sequence[Gate] = (),
    force: bool = False,
    split_source: str = "auto",
) -> Int8Result:
    """Quantize a checkpoint's generator to INT8 at `out_path`: an OpenVINO IR (.xml + .bin; NNCF
    with `recipe`) or an ONNX file for ONNX Runtime (.onnx; export.ort_int8's fixed recipe).

    Masks: from the CAMUS tree `calibrate` (train split calibrates, test split is held out), or
    given as uint8 (N, H, W) arrays `calibration`/`heldout` (unkept labels zeroed). The IR is
    written only when every check passes (PSNR, then `gates`), or with `force`; otherwise
    VerificationFailed carries the report.
    """
    from echogen_trt.export.onnx_export import export_checkpoint

    start = time.perf_counter()
    recipe = (recipe or Int8Recipe()).check()
    out = Path(out_path)
    check_output_path(
        out, inputs=[ckpt_path], suffixes=(IR_SUFFIX, ONNX_SUFFIX), what="INT8 output"
    )
    inputs = {f"checkpoint {ckpt_path}": ckpt_path, f"--calibrate tree {calibrate}": calibrate}
    check_outputs(model_files(out, "INT8 output"), inputs=inputs)  # the .bin too
    ir = out.suffix.lower() == IR_SUFFIX
    if ir:
        require_nncf()
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked_temp_dir(out.parent, ".int8-") as tmp:  # also removes a killed run's folder
        fp32_onnx = Path(tmp) / f"fp32{ONNX_SUFFIX}"
        [fp32] = export_checkpoint(ckpt_path, fp32_onnx, precision=FP32)
        meta = fp32.meta
        if meta.io != "float":
            raise ConfigError("int8 export | fused uint8 io is not supported. Expected float io.")
        calib, held = _mask_sets(meta, calibrate, calibration, heldout, split_source)
        int8_meta = replace(meta, precision=INT8)
        staged = Path(tmp) / out.name
        if ir:
            quantized, ignored = quantize(
                load_model(fp32_onnx), batch_from_masks(calib, meta), recipe
            )
            save_ir(quantized, staged, int8_meta)
        else:
            from echogen_trt.export.ort_int8 import quantize_onnx

            ignored = quantize_onnx(fp32_onnx, staged, batch_from_masks(calib, meta))
            proto = load_onnx(staged)
            write_meta(proto, int8_meta)
            save_model(proto, staged)
        kind = resolve_kind(staged)  # the FP32 reference runs on the INT8 file's backend too
        report = VerifyReport(out, INT8, meta.io, None, len(held))
        fp32_out, int8_out = _run(fp32_onnx, held, kind), _run(staged, held, kind)
        report.checks.append(psnr_gate(fp32_out, int8_out, min_psnr_db))
        report.checks += [gate(fp32_onnx, staged) for gate in gates]
        result = Int8Result(
            out, int8_meta, recipe, report, len(calib), len(held), ignored, 0,
            time.perf_counter() - start, written=False, forced=force and not report.ok,
        )  # fmt: skip
        if not report.ok and not force:
            log.warning("INT8 model refused: %s", "; ".join(c.value for c in report.failures()))
            raise VerificationFailed(_refusal(out, report), report)
        if ir:
            shutil.move(weights_path(staged), weights_path(out))
        shutil.move(staged, out)
    result.written = True
    result.size_bytes = out.stat().st_size + (weights_path(out).stat().st_size if ir else 0)
    result.seconds = time.perf_counter() - start
    if result.forced:
        result.notes.append("written with --force although the accuracy gate failed")
    if not gates:
        result.notes.append(
            "only the PSNR gate ran: evaluate.dice_gate.export_int8_gated adds the "
            "segmentation-consistency Dice gate (what `export --precision int8` runs)"
        )
    log.info("wrote %s (int8, %.1f MB) in %.1f s", out, result.size_bytes / 1e6, result.seconds)
    return result


def _mask_sets(
    meta: ModelMeta,
    root: str | os.PathLike[str] | None,
    calibration: np.ndarray | None,
    heldout: np.ndarray | None,
    split_source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, held-out) uint8 masks at the model's size."""
    size = tuple(meta.input_size)
    if root is not None:
        kwargs: dict[str, Any] = {"experiment": meta.experiment, "size": size}
        fit: list[str] = []
        judge: list[str] = []
        if calibration is None:
            calibration, fit = split_masks(root, "train", split_source=split_source, **kwargs)
        if heldout is None:
            heldout, judge = split_masks(root, "test", split_source=split_source, **kwargs)
        check_disjoint(("calibration", fit), ("held-out", judge), f"--calibrate {root}")
    if calibration is None or heldout is None:
        raise ConfigError(
            "int8 export | no masks to calibrate on. Expected --calibrate DATA, a CAMUS-layout "
            "tree (its train split calibrates, its test split is held out)."
        )
    for name, masks in (("calibration", calibration), ("held-out", heldout)):
        if masks.ndim != 3 or tuple(masks.shape[1:]) != size or len(masks) == 0:
            raise ExportError(
                f"{name} masks | shape {masks.shape}. Expected (N, {size[0]}, {size[1]}), N >= 1."
            )
    return np.asarray(calibration, np.uint8), np.asarray(heldout, np.uint8)
