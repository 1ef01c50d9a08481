"""Build TensorRT engines from exported ONNX files, for desktop GPUs and Jetson (TensorRT 8.5-11).

One path for every version: parse -> config -> optimization profile -> timing cache -> build ->
inspect layer precisions -> write engine and provenance. The version branches are in
`typing_plan` (how FP16 is obtained) and `network_flags`:

- 8.5-10.x, FP32 ONNX: weakly typed network + BuilderFlag.FP16 (8.x also needs EXPLICIT_BATCH).
- 10.x, FP16-typed ONNX: strongly typed network (STRONGLY_TYPED), no FP16 flag.
- 11.x: no BuilderFlag.FP16 any more, every network is strongly typed: FP16 needs the FP16 ONNX.

Never both: TensorRT 10 rejects the FP16 flag on a strongly typed network, and on 11 code that
"sets FP16 if the flag exists" silently builds FP32. So every FP16 build is checked afterwards
with the engine inspector, and one with (almost) no FP16 layers is an error, not an engine.
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
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import read_meta
from echogen_trt.errors import BackendUnavailable, ConfigError, EngineBuildError, InternalError
from echogen_trt.export.trt_inspect import check_precision, inspect_engine
from echogen_trt.fileio import check_distinct, check_output_path, write_bytes_atomic
from echogen_trt.runtime import availability, cuda_mem
from echogen_trt.runtime.backends.tensorrt import shared_logger, trt_errors

if TYPE_CHECKING:
    import tensorrt as trt_t

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetPreset:
    workspace_mb: int
    opt_batch: int
    max_batch: int


TARGETS = {
    "desktop": TargetPreset(workspace_mb=4096, opt_batch=8, max_batch=32),
    "jetson": TargetPreset(workspace_mb=1024, opt_batch=1, max_batch=8),
}
PRECISIONS = ("fp16", "fp32")
MIN_VERSION = (8, 5)  # the name-based I/O API (execute_async_v3) starts here
MIN_FP16_FRACTION = 0.05  # below this share of FP16 compute layers an fp16 build is "silent FP32"


@dataclass(frozen=True)
class TypingPlan:
    """How this build gets its precision: which network flags and builder flags."""

    strongly_typed: bool
    fp16_flag: bool
    explicit_batch: bool


@dataclass(frozen=True)
class OnnxTensor:
    name: str
    shape: tuple[int | None, ...]  # None for a dynamic dimension
    dtype: str  # numpy dtype name


@dataclass(frozen=True)
class OnnxInfo:
    path: Path
    data: bytes
    sha256: str
    meta: ModelMeta
    inputs: tuple[OnnxTensor, ...]


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


# -- options ------------------------------------------------------------------------------
def resolve_options(
    *,
    precision: str | None = None,
    min_batch: int | None = None,
    opt_batch: int | None = None,
    max_batch: int | None = None,
    workspace_mb: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    target: str | None = None,
) -> pv.BuildOptions:
    """Fill unset options from the target preset and validate them (ConfigError)."""
    target = target or "desktop"
    if target not in TARGETS:
        raise ConfigError(f"--target | unknown {target!r}. Expected one of {sorted(TARGETS)}.")
    preset, precision = TARGETS[target], precision or "fp16"
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision | unknown {precision!r}. Expected one of {PRECISIONS}.")
    lo = 1 if min_batch is None else min_batch
    hi = max_batch if max_batch is not None else max(preset.max_batch, opt_batch or 0, lo)
    opt = opt_batch if opt_batch is not None else min(max(preset.opt_batch, lo), hi)
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(
            f"batch sizes | need 1 <= min <= opt <= max, got min={lo}, opt={opt}, max={hi}. "
            "Hint: e.g. --min-batch 1 --opt-batch 8 --max-batch 32."
        )
    workspace = preset.workspace_mb if workspace_mb is None else workspace_mb
    if workspace <= 0:
        raise ConfigError(f"--workspace-mb | must be positive, got {workspace}.")
    if dla_core is not None:
        if dla_core < 0:
            raise ConfigError(f"--dla-core | must be >= 0, got {dla_core}.")
        if precision != "fp16":
            raise ConfigError(
                "--dla-core | the DLA runs FP16 (or INT8) only, got --precision fp32. "
                "Hint: drop --dla-core or use --precision fp16."
            )
        if (lo, hi) != (opt, opt):
            log.info("DLA needs static shapes: building for batch %d only (min=opt=max)", opt)
        lo = hi = opt
    cache = None if timing_cache is None else str(timing_cache)
    return pv.BuildOptions(precision, lo, opt, hi, workspace, cache, dla_core, target)


def trt_version(trt: Any) -> tuple[int, int]:
    """(major, minor) of a TensorRT module; BackendUnavailable below 8.5."""
    text = str(trt.__version__)
    try:
        major, minor = (int(p) for p in text.split(".")[:2])
    except ValueError as err:
        raise BackendUnavailable(f"tensorrt | unreadable version {text!r}.") from err
    if (major, minor) < MIN_VERSION:
        raise BackendUnavailable(
            f"tensorrt | version {text} is too old. Expected 8.5 or newer, for the name-based "
            "I/O API. Hint: JetPack 4.6 (TensorRT 8.2) is not supported, nor JetPack 5 (its "
            "Python 3.8 is too old for this package); run the ONNX Runtime backend there."
        )
    return major, minor


def typing_plan(
    version: tuple[int, int], precision: str, onnx_precision: str, source: str
) -> TypingPlan:
    """Strong or weak typing, FP16 flag or not: the only place the versions differ."""
    major = version[0]
    if precision == "fp32" and onnx_precision == "fp16":
        raise EngineBuildError(
            f"{source} | is an FP16 ONNX, but an fp32 engine was asked for. Expected an FP32 "
            "ONNX. Hint: build from the FP32 export, or pass --precision fp16."
        )
    if major >= 11:
        if precision == "fp16" and onnx_precision != "fp16":
            raise EngineBuildError(
                f"{source} | is an {onnx_precision.upper()} ONNX, but TensorRT "
                f"{major}.{version[1]} has no BuilderFlag.FP16 (every network is strongly "
                "typed), so an fp16 engine needs an FP16-typed ONNX. Hint: export one with "
                "`echogen-trt export --precision fp16` and build from that file."
            )
        return TypingPlan(strongly_typed=True, fp16_flag=False, explicit_batch=False)
    if major >= 10 and onnx_precision == "fp16":
        return TypingPlan(strongly_typed=True, fp16_flag=False, explicit_batch=False)
    # 8.x has no strong typing: an FP16 ONNX is built weakly typed, the FP16 flag allowing it.
    return TypingPlan(
        strongly_typed=False, fp16_flag=precision == "fp16", explicit_batch=major < 10
    )


def network_flags(trt: Any, version: tuple[int, int], plan: TypingPlan) -> int:
    """create_network flags. 11.x networks are strongly typed by default: no flag needed."""
    if plan.strongly_typed and plan.fp16_flag:
        raise InternalError("typing plan sets FP16 on a strongly typed network")
    flags = 0
    if plan.explicit_batch:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.strongly_typed and version[0] < 11:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


# -- the ONNX side --------------------------------------------------------------------------
def read_onnx(path: str | os.PathLike[str]) -> OnnxInfo:
    """Bytes, hash, ModelMeta and graph inputs of an exported ONNX file."""
    import onnx
    from onnx import helper

    path = Path(path)
    if not path.is_file():
        raise EngineBuildError(
            f"{path} | ONNX file not found. Hint: export one with `echogen-trt export`."
        )
    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf raises its own DecodeError
        raise EngineBuildError(f"{path} | not a readable ONNX file ({err}).") from err
    meta = read_meta(model, source=str(path))
    initializers = {init.name for init in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        inputs.append(OnnxTensor(value.name, dims, dtype))
    return OnnxInfo(path, data, pv.sha256_file(path), meta, tuple(inputs))


def profile_shapes(info: OnnxInfo, opts: pv.BuildOptions) -> dict[str, dict[str, list[int]]]:
    """min/opt/max shape per input: batch from the options, H and W from the ModelMeta."""
    shapes: dict[str, dict[str, list[int]]] = {}
    for tensor in info.inputs:
        dims = list(tensor.shape)
        for axis in range(1, len(dims)):
            if dims[axis] is None:
                spatial = len(dims) - axis  # 2: H, 1: W
                if spatial > 2:
                    raise EngineBuildError(
                        f"{info.path} | input '{tensor.name}' has a dynamic dimension {axis} "
                        f"{tuple(tensor.shape)}. Expected only the batch to be dynamic. "
                        "Hint: re-export with a fixed image size."
                    )
                dims[axis] = info.meta.input_size[2 - spatial]
        if dims and dims[0] is not None:
            if (opts.min_batch, opts.max_batch) != (dims[0], dims[0]):
                log.warning(
                    "%s has a static batch of %s: batch options ignored", info.path, dims[0]
                )
            batches = (dims[0],) * 3
        else:
            batches = (opts.min_batch, opts.opt_batch, opts.max_batch)
        rest = [int(d) for d in dims[1:] if d is not None]
        shapes[tensor.name] = {
            key: [b, *rest] for key, b in zip(("min", "opt", "max"), batches, strict=True)
        }
    return shapes


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
    if opts.precision == "fp32":  # TF32 is on by default (Ampere+): an "fp32" engine would not be
        config.clear_flag(trt.BuilderFlag.TF32)
    if opts.dla_core is not None:
        _require_dla(trt)
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


def _require_dla(trt: Any) -> None:
    """TensorRT 11.0-11.3 have no DLA at all (NVIDIA's 10.x -> 11.x Jetson migration guide)."""
    version = trt_version(trt)
    if (11, 0) <= version <= (11, 3):
        raise EngineBuildError(
            f"--dla-core | TensorRT {trt.__version__} has no DLA support (DLA is absent in "
            "TensorRT 11.0-11.3). Expected TensorRT 10.x (JetPack 6) or 11.4.1+ on JetPack "
            "7.2.2+. Hint: drop --dla-core to build for the GPU."
        )


def _attach_timing_cache(config: trt_t.IBuilderConfig, path: str | None) -> None:
    data = Path(path).read_bytes() if path and Path(path).is_file() else b""
    cache: trt_t.ITimingCache | None = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s is from another TensorRT or GPU: starting a fresh one", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    elif data:
        log.info("timing cache %s loaded (%d bytes)", path, len(data))


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
    _attach_timing_cache(config, opts.timing_cache)
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
        write_bytes_atomic(
            opts.timing_cache, bytes(memoryview(config.get_timing_cache().serialize()))
        )
    return bytes(memoryview(host)), shapes


# -- the entry point ------------------------------------------------------------------------
def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    precision: str | None = None,
    min_batch: int | None = None,
    opt_batch: int | None = None,
    max_batch: int | None = None,
    workspace_mb: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    target: str | None = None,
    device: int = 0,
    min_fp16_fraction: float = MIN_FP16_FRACTION,
    trt: Any = None,
    cuda: cuda_mem.CudaApi | None = None,
) -> BuildResult:
    """Build `<onnx>.engine` (or `out_path`) and its provenance `<engine>.json`.

    Unset options come from the target preset (desktop: workspace 4096 MB, batch 1/8/32;
    jetson: 1024 MB, batch 1/1/8). `trt` and `cuda` inject a TensorRT module and a CudaApi
    (tests); by default the installed ones are used.
    """
    opts = resolve_options(
        precision=precision, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch,
        workspace_mb=workspace_mb, timing_cache=timing_cache, dla_core=dla_core, target=target,
    )  # fmt: skip
    engine_path = Path(out_path) if out_path is not None else Path(onnx_path).with_suffix(".engine")
    check_distinct(opts.timing_cache, {"ONNX input": onnx_path, "engine output": engine_path},
                   what="--timing-cache")  # fmt: skip
    info = read_onnx(onnx_path)
    check_output_path(engine_path, inputs=[info.path], suffixes=(".engine", ".plan"), what="engine")
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
