"""Build TensorRT engines from exported ONNX files, for desktop GPUs and Jetson (TensorRT 8.5-11).

One path for every version: read the ONNX (`trt_onnx_source`) -> parse -> config
(`trt_presets` options, `trt_version_policy` flags) -> optimization profile -> timing cache
(`timing_cache`) -> build -> inspect layer precisions (`trt_inspect`) -> write the engine and
its provenance (`artifacts.provenance`). Every FP16 build is checked afterwards with the engine
inspector, and one with (almost) no FP16 layers is an error, not an engine.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echogen_trt import __version__
from echogen_trt.artifacts import provenance as pv
from echogen_trt.artifacts.precision import FP32
from echogen_trt.errors import EngineBuildError
from echogen_trt.export.timing_cache import attach_timing_cache, save_timing_cache
from echogen_trt.export.trt_inspect import check_precision, inspect_engine
from echogen_trt.export.trt_onnx_source import OnnxInfo, profile_shapes, read_onnx
from echogen_trt.export.trt_presets import resolve_options
from echogen_trt.export.trt_version_policy import (
    TypingPlan,
    network_flags,
    require_dla,
    typing_plan,
)
from echogen_trt.fileio import check_distinct, check_output_path, check_outputs, write_bytes_atomic
from echogen_trt.runtime import availability
from echogen_trt.runtime.gpu import cuda_mem
from echogen_trt.runtime.gpu.trt_api import shared_logger, trt_errors, trt_version
from echogen_trt.runtime.model_files import model_files
from echogen_trt.runtime.registry import ENGINE_SUFFIXES

if TYPE_CHECKING:
    import tensorrt as trt_t

log = logging.getLogger(__name__)

MIN_FP16_FRACTION = 0.05  # below this share of FP16 compute layers an fp16 build is "silent FP32"


@dataclass(frozen=True)
class BuildResult:
    """What `build_engine` made; `to_dict()` is the CLI's --json summary."""

    engine_path: Path
    provenance_path: Path
    provenance: pv.Provenance
    engine_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        prov = self.provenance
        return {
            "engine": str(self.engine_path),
            "provenance": str(self.provenance_path),
            "engine_mb": round(self.engine_bytes / 2**20, 3),
            "seconds": round(self.seconds, 2),
            "precision": prov.precision,
            "strongly_typed": prov.strongly_typed,
            "tensorrt_version": prov.tensorrt_version,
            "device": prov.device_name,
            "compute_capability": prov.compute_capability,
            "profile": prov.profile,
            "layer_precisions": prov.layer_precisions,
            "options": asdict(prov.options),
        }


# -- TensorRT callbacks ---------------------------------------------------------------------
def make_progress_monitor(trt: Any) -> Any | None:
    """An IProgressMonitor (TensorRT 10+) logging build phases with elapsed times; else None."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    def init(self: Any) -> None:
        base.__init__(self)
        self.started = {}

    def phase_start(self: Any, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        self.started[phase_name] = time.perf_counter()
        level = logging.INFO if parent_phase is None else logging.DEBUG
        log.log(level, "  %s (%d steps) ...", phase_name, num_steps)

    def step_complete(self: Any, phase_name: str, step: int) -> bool:
        return True  # never cancel

    def phase_finish(self: Any, phase_name: str) -> None:
        seconds = time.perf_counter() - self.started.pop(phase_name, time.perf_counter())
        log.debug("  %s done in %.1f s", phase_name, seconds)

    methods = {
        "__init__": init,
        "phase_start": phase_start,
        "step_complete": step_complete,
        "phase_finish": phase_finish,
    }
    return type("EchogenBuildProgress", (base,), methods)()


# -- the build ------------------------------------------------------------------------------
def _parse(trt: Any, network: trt_t.INetworkDefinition, logger: Any, info: OnnxInfo) -> None:
    parser: trt_t.OnnxParser = trt.OnnxParser(network, logger)
    ok = parser.parse(info.data, path=str(info.path))
    if ok and parser.num_errors == 0:
        return
    errors = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = f"node {err.node()}"
        name = getattr(err, "node_name", None)  # 10.x+
        if name is not None and name():
            where += f" '{name()}' ({err.node_operator()})"
        errors.append(f"  - {where}: {err.desc()}")
    listed = "\n".join(errors) or "  - (the parser gave no details; see the TensorRT log)"
    raise EngineBuildError(
        f"{info.path} | TensorRT's ONNX parser failed with {len(errors)} error(s):\n{listed}\n"
        "Hint: `echogen-trt export` checks ops against TensorRT's supported list; re-export "
        "with opset 17."
    )


def _configure(
    trt: Any,
    builder: trt_t.Builder,
    opts: pv.BuildOptions,
    plan: TypingPlan,
    shapes: dict[str, dict[str, list[int]]],
    dynamic: bool,
) -> trt_t.IBuilderConfig:
    config: trt_t.IBuilderConfig = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # for the precision check
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if opts.precision == FP32:  # TF32 is on by default (Ampere+): an "fp32" engine would not be
        config.clear_flag(trt.BuilderFlag.TF32)
    if opts.dla_core is not None:
        require_dla(trt)
        cores = int(builder.num_DLA_cores)
        if opts.dla_core >= cores:
            raise EngineBuildError(
                f"--dla-core | core {opts.dla_core} asked for, this device has {cores} DLA "
                "core(s). Hint: Jetson AGX/NX Orin have cores 0 and 1; Orin Nano has none."
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = opts.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if dynamic:  # a dynamic input needs a profile, even one with min == max (DLA)
        profile: trt_t.IOptimizationProfile = builder.create_optimization_profile()
        for name, s in shapes.items():
            profile.set_shape(name, trt.Dims(s["min"]), trt.Dims(s["opt"]), trt.Dims(s["max"]))
        if config.add_optimization_profile(profile) < 0:
            raise EngineBuildError(f"optimization profile | TensorRT rejected {shapes}.")
    return config


def _build_serialized(
    trt: Any, info: OnnxInfo, opts: pv.BuildOptions, plan: TypingPlan, flags: int
) -> tuple[bytes, dict[str, dict[str, list[int]]]]:
    """Parse, configure, build: the serialized engine and the profile shapes used."""
    logger = shared_logger(trt)
    builder: trt_t.Builder = trt.Builder(logger)
    network: trt_t.INetworkDefinition = builder.create_network(flags)
    _parse(trt, network, logger, info)
    shapes = profile_shapes(info, opts)
    dynamic = any(None in t.shape for t in info.inputs)
    config = _configure(trt, builder, opts, plan, shapes, dynamic)
    attach_timing_cache(config, opts.timing_cache)
    monitor = make_progress_monitor(trt)
    if monitor is not None:
        config.progress_monitor = monitor
    with trt_errors(logger) as errors:
        host: trt_t.IHostMemory | None = builder.build_serialized_network(network, config)
    if host is None:
        listed = "\n".join(f"  - {e}" for e in errors) or "  - (no error message)"
        raise EngineBuildError(
            f"{info.path} | TensorRT could not build the engine:\n{listed}\n"
            "Hint: run with -vv for TensorRT's full log; try a larger --workspace-mb."
        )
    if opts.timing_cache:
        save_timing_cache(config, opts.timing_cache)
    return bytes(memoryview(host)), shapes


# -- the entry point ------------------------------------------------------------------------
def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    device: int = 0,
    min_fp16_fraction: float = MIN_FP16_FRACTION,
    trt: Any = None,
    cuda: cuda_mem.CudaApi | None = None,
    **options: Any,
) -> BuildResult:
    """Build `<onnx>.engine` (or `out_path`) and its provenance `<engine>.json`.

    `options` are `trt_presets.resolve_options`'s keywords (precision, min_batch, opt_batch,
    max_batch, workspace_mb, timing_cache, dla_core, target); unset ones come from the target
    preset (desktop: workspace 4096 MB, batch 1/8/32; jetson: 1024 MB, batch 1/1/8). `trt` and
    `cuda` inject a TensorRT module and a CudaApi (tests); by default the installed ones are used.
    """
    opts = resolve_options(**options)
    engine_path = (
        Path(out_path) if out_path is not None else Path(onnx_path).with_suffix(ENGINE_SUFFIXES[0])
    )
    check_distinct(opts.timing_cache, {"ONNX input": onnx_path, "engine output": engine_path},
                   what="--timing-cache")  # fmt: skip
    info = read_onnx(onnx_path)
    check_output_path(engine_path, inputs=[info.path], suffixes=ENGINE_SUFFIXES, what="engine")
    check_outputs(model_files(engine_path, "engine"), inputs={f"ONNX input {info.path}": info.path})
    trt = trt if trt is not None else availability.require_tensorrt()
    cuda = cuda if cuda is not None else cuda_mem.get_cuda_api()
    gpu = cuda_mem.require_device(cuda, device)
    version = trt_version(trt)
    plan = typing_plan(version, opts.precision, info.meta.precision, str(info.path))
    _warn_target(opts.target, gpu)
    log.info(
        "building %s -> %s: TensorRT %s on %s (sm %s), %s, %s typing, batch %d/%d/%d ...",
        info.path, engine_path, trt.__version__, gpu.name, gpu.sm, opts.precision,
        "strong" if plan.strongly_typed else "weak", opts.min_batch, opts.opt_batch,
        opts.max_batch,
    )  # fmt: skip
    start = time.perf_counter()
    with cuda.bind(device):
        flags = network_flags(trt, version, plan)
        data, shapes = _build_serialized(trt, info, opts, plan, flags)
        io, counts = inspect_engine(trt, data, str(info.path))
    check_precision(counts, opts.precision, min_fp16_fraction, str(info.path))
    seconds = time.perf_counter() - start
    prov = pv.Provenance(
        tensorrt_version=str(trt.__version__), device_name=gpu.name, compute_capability=gpu.sm,
        precision=opts.precision, strongly_typed=plan.strongly_typed, profile=shapes, io=io,
        onnx_path=str(info.path.resolve()), onnx_sha256=info.sha256, options=opts,
        model_meta=asdict(info.meta), built_at=datetime.now(timezone.utc).isoformat(),
        build_seconds=round(seconds, 3), echogen_version=__version__,
        platform=platform.machine() + ("-jetson" if gpu.integrated else ""),
        layer_precisions=counts,
    )  # fmt: skip
    write_bytes_atomic(engine_path, data)
    prov_path = pv.write_provenance(prov, engine_path)
    log.info("built %s (%.1f MB) in %.1f s", engine_path, len(data) / 2**20, seconds)
    return BuildResult(engine_path, prov_path, prov, len(data), seconds)


def _warn_target(target: str, gpu: cuda_mem.DeviceInfo) -> None:
    if target == "jetson" and not gpu.integrated:
        log.warning(
            "--target jetson on %s, which is not a Jetson: the preset applies, but the engine "
            "runs only on this GPU. Build on the Jetson itself to deploy there.",
            gpu.name,
        )
    elif target == "desktop" and gpu.integrated:
        log.info("this looks like a Jetson (%s): consider --target jetson", gpu.name)
