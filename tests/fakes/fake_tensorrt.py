"""A fake `tensorrt` module that follows the real Python API closely enough to drive
`export.trt_build` and `runtime.backends.tensorrt` end to end, for TensorRT 8.5, 10.x and 11.x.

`make_fake_trt(version, cuda=...)` returns a fresh module. What it mimics, and where each
behaviour comes from. [NVIDIA]: taken from NVIDIA's own sources (tensorrt-stubs 10.13, which the
surface test checks every public name against; the TensorRT Python API reference and release
notes for 8.5, 10.x and 11.x; NVIDIA's samples), summarised in docs/reference.md section 5.
[assumed]: our reading, not confirmed on a real TensorRT; a GPU run (tests marked `gpu`,
benchmarks/gpu_check.py) has to confirm or correct it. Mechanisms of the fake itself (how it
computes) are neither: they are how it stands in, not claims about TensorRT.

- per-version API surface [NVIDIA]: 11.x has no BuilderFlag.FP16/INT8/BF16 and no
  EXPLICIT_BATCH; 8.5 has no STRONGLY_TYPED, no IProgressMonitor and no ParserError.node_name;
  pybind objects refuse unknown attributes (setting `config.progress_monitor` on 8.5 raises
  AttributeError: pybind11's default without `py::dynamic_attr`);
- the ONNX parser needs an EXPLICIT_BATCH network on 8.x [NVIDIA]; it reports one error per
  unsupported node, with `desc()`/`node()` [assumed: the real parser may stop at the first]
  (op list: `echogen_trt.export.ops.supported_ops()`);
- the builder fails (logs an error, returns None) [NVIDIA: `build_serialized_network` returns
  None on failure] for FP16 on a strongly typed network, a dynamic input without an
  optimization profile, a profile outside its bounds, a cancelled progress monitor [NVIDIA], and
  a missing DLA core [assumed] (DLA's FP16 and static-shape needs are asserted on the recorded
  build, not re-implemented);
- BuilderFlag.TF32 is on in a new config [NVIDIA]; one global logger, the first
  Builder/Runtime's [NVIDIA]; Myelin-fused layers in the inspector output (10.x: a ForeignNode
  region, 11.x: "_myl" kernels with "Datatype") [assumed]; no DLA in 11.0-11.3 [assumed]; an 8.5
  inspector that does not keep its engine alive [assumed]; engines/contexts/runtimes that must be
  freed inside a CUDA binding [assumed: pycuda's per-thread context];
- layer precisions follow the typing rules (weak typing + FP16 flag -> Half, strong typing ->
  the ONNX tensor types) [NVIDIA]; `fp16_kernels=False` simulates a "silent FP32" build
  [assumed: what 11.x does to code that still looks for the FP16 flag];
- the inspector's JSON uses the 10.x schema ("Format/Datatype", "Bindings") [assumed, from
  trtexec output of 10.x] or the 11.x one ("Datatype"/"Format", "I/O Tensors") [assumed];
- `Runtime` refuses a plan from another TensorRT version or another GPU architecture, logging an
  error and returning None [NVIDIA: engines are tied to both; the message wording is assumed];
- mechanisms: the serialized engine embeds the ONNX bytes; `execute_async_v3` runs ONNX Runtime
  on the bytes found at the bound device addresses of a `FakeCuda`, queued on the stream like a
  real kernel.

Every public name the fake defines exists in tensorrt-stubs (checked by a test), and every
public attribute our code touches is recorded in `module._used` (checked too).
"""

from __future__ import annotations

import json
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from echogen_trt.export.ops import supported_ops

from .fake_cuda import FakeCuda

VERSIONS = ("8.5.2", "10.3.0", "11.0.0")
MAGIC = b"FAKETRT1"

# -- per-version enum members -------------------------------------------------------------------
_BUILDER_FLAGS_85 = [
    "FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
    "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS",
    "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS",
]  # fmt: skip
_BUILDER_FLAGS_10 = [
    *_BUILDER_FLAGS_85, "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
    "ERROR_ON_TIMING_CACHE_MISS", "BF16", "INT4",
]  # fmt: skip
_REMOVED_IN_11 = {"FP16", "INT8", "FP8", "BF16", "INT4", "OBEY_PRECISION_CONSTRAINTS",
                  "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO"}  # fmt: skip
_DATATYPES_85 = ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8"]
_DATATYPES_10 = [*_DATATYPES_85, "BF16", "INT64", "INT4"]
_ONNX_TO_TRT = {
    onnx.TensorProto.FLOAT: "FLOAT", onnx.TensorProto.FLOAT16: "HALF",
    onnx.TensorProto.UINT8: "UINT8", onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.INT32: "INT32", onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.BOOL: "BOOL",
}  # fmt: skip
_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "UINT8": np.uint8, "INT8": np.int8,
          "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}  # fmt: skip
_LAYER_TYPES = {"Conv": "CaskConvolution", "ConvTranspose": "CaskDeconvolution",
                "BatchNormalization": "Scale", "Cast": "Cast"}  # fmt: skip
_FORMAT_10 = {"HALF": "Row major linear FP16 format", "FLOAT": "Row major linear FP32",
              "UINT8": "Row major linear UInt8 format"}  # fmt: skip
_TYPE_11 = {"HALF": "Half", "FLOAT": "Float", "UINT8": "UInt8"}


@dataclass
class BuildRecord:
    """What one `build_serialized_network` call saw (for assertions)."""

    network_flags: int = 0
    strongly_typed: bool = False
    builder_flags: list[str] = field(default_factory=list)
    pools: dict[str, int] = field(default_factory=dict)
    profiles: list[dict[str, list[tuple[int, ...]]]] = field(default_factory=list)
    device_type: str = "GPU"
    dla_core: int = -1
    verbosity: str = ""
    cache_keys_before: int = 0
    cache_hits: int = 0
    progress_phases: list[str] = field(default_factory=list)
    ok: bool = False


@dataclass
class _State:
    version: str
    major: int
    cuda: FakeCuda
    fp16_kernels: bool
    dla_cores: int
    fail_build: str | None
    cancel_build: bool
    used: set[tuple[str, str]] = field(default_factory=set)
    builds: list[BuildRecord] = field(default_factory=list)
    logger: Any = None  # the one global logger pointer
    dla_loads: list[int] = field(default_factory=list)  # IRuntime.DLA_core at each DLA load
    freed_late: list[str] = field(default_factory=list)  # objects freed outside a CUDA binding
    use_after_free: list[str] = field(default_factory=list)
    classes: dict[str, type] = field(default_factory=dict)

    def device(self) -> Any:
        return self.cuda.devices[self.cuda.bound[-1] if self.cuda.bound else 0]


# -- recording base classes -----------------------------------------------------------------
class _Rec(type):
    """Records public class-attribute reads (e.g. `trt.BuilderFlag.FP16`)."""

    def __getattribute__(cls, name: str) -> Any:
        if not name.startswith("_") and _from_outside():
            st = _class_state(cls)
            if st is not None:
                st.used.add((type.__getattribute__(cls, "_stub_name"), name))
        return type.__getattribute__(cls, name)


def _from_outside() -> bool:
    """True when the attribute read comes from code other than this fake (ours, or a test)."""
    return sys._getframe(2).f_globals.get("__name__") != __name__


def _class_state(cls: type) -> _State | None:
    for klass in type.__getattribute__(cls, "__mro__"):
        st = klass.__dict__.get("_st")
        if st is not None:
            return st  # type: ignore[no-any-return]
    return None


class _Api(metaclass=_Rec):
    """Base of every fake class: records public attribute reads and, like pybind objects,
    refuses to set attributes the class does not declare."""

    _st: _State | None = None
    _stub_name = ""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and _from_outside() and not _user_defined(self, name):
            cls = type(self)
            st = _class_state(cls)
            if st is not None:
                st.used.add((type.__getattribute__(cls, "_stub_name"), name))
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # Python subclasses of pybind classes (a custom ILogger) do get an instance __dict__
        own_class = "_stub_name" in type(self).__dict__
        if own_class and not name.startswith("_"):
            if not hasattr(type(self), name):
                raise AttributeError(
                    f"'tensorrt.{type(self)._stub_name}' has no attribute {name!r}"
                )
            if _from_outside():
                self._state.used.add((type(self)._stub_name, name))
        object.__setattr__(self, name, value)

    @property
    def _state(self) -> _State:
        st = _class_state(type(self))
        assert st is not None
        return st


def _user_defined(obj: Any, name: str) -> bool:
    """True for attributes a Python subclass (e.g. our ILogger) defines itself."""
    if name in object.__getattribute__(obj, "__dict__"):
        return True
    for klass in type(obj).__mro__:
        if "_stub_name" in klass.__dict__:
            return False
        if name in klass.__dict__:
            return True
    return False


class _Enum(_Api):
    def __init__(self, name: str, value: int) -> None:
        self._name, self._value = name, value

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> int:
        return self._value

    def __int__(self) -> int:
        return self._value

    def __index__(self) -> int:
        return self._value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._value == self._value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._value))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name}: {self._value}>"


# -- data classes ------------------------------------------------------------------------------
class _Dims(_Api, tuple):  # type: ignore[misc]
    MAX_DIMS = 8

    def __new__(cls, shape: Any = ()) -> Any:
        return tuple.__new__(cls, (int(d) for d in shape))


class _IHostMemory(_Api, bytes):  # type: ignore[misc]
    @property
    def nbytes(self) -> int:
        return len(self)

    @property
    def dtype(self) -> Any:
        return self._state.classes["DataType"].UINT8


class _ITensor(_Api):
    def __init__(self, name: str, shape: Any, dtype: Any, is_input: bool) -> None:
        self._name, self._shape, self._dtype, self._is_input = name, shape, dtype, is_input

    name = property(lambda self: self._name)
    shape = property(lambda self: self._shape)
    dtype = property(lambda self: self._dtype)
    is_network_input = property(lambda self: self._is_input)
    is_network_output = property(lambda self: not self._is_input)


class _ILogger(_Api):
    def __init__(self) -> None:
        pass

    def log(self, severity: Any, msg: str) -> None:
        raise NotImplementedError


class _Logger(_ILogger):
    min_severity: Any = None

    def __init__(self, min_severity: Any = None) -> None:
        self.min_severity = min_severity
        self._lines: list[str] = []

    def log(self, severity: Any, msg: str) -> None:
        self._lines.append(f"{severity.name}: {msg}")


class _IProgressMonitor(_Api):
    def __init__(self) -> None:
        pass


def _emit(logger: Any, severity: str, msg: str) -> None:
    st = _class_state(type(logger))
    assert st is not None
    logger.log(getattr(st.classes["ILogger.Severity"], severity), msg)


def _global_logger(st: _State, logger: Any, creator: str) -> Any:
    """TensorRT keeps one logger pointer for the process: the first Builder/Runtime sets it,
    later ones with another logger are warned and ignored (their messages go to the first)."""
    if st.logger is None:
        st.logger = logger
    elif logger is not st.logger:
        _emit(st.logger, "WARNING", f"The logger passed into {creator} differs from one already "
              "provided for an existing builder, runtime, or refitter. TensorRT maintains only a "
              "single logger pointer at any given time, so the existing value will be used "
              "instead.")  # fmt: skip
    return st.logger


# -- network and parser ------------------------------------------------------------------------
class _INetworkDefinition(_Api):
    def __init__(self, flags: int) -> None:
        self._flags = flags
        self._inputs: list[Any] = []
        self._outputs: list[Any] = []
        self._proto: onnx.ModelProto | None = None
        self._data = b""

    flags = property(lambda self: self._flags)
    num_inputs = property(lambda self: len(self._inputs))
    num_outputs = property(lambda self: len(self._outputs))
    num_layers = property(lambda self: len(self._proto.graph.node) if self._proto else 0)

    @property
    def has_implicit_batch_dimension(self) -> bool:
        st = self._state
        return st.major < 10 and not self._flags & 1  # EXPLICIT_BATCH is bit 0

    def get_input(self, index: int) -> Any:
        return self._inputs[index]

    def get_output(self, index: int) -> Any:
        return self._outputs[index]

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags >> int(flag) & 1)

    @property
    def _strongly_typed(self) -> bool:
        st = self._state
        return st.major >= 11 or (st.major == 10 and bool(self._flags >> 1 & 1))

    def _load(self, proto: onnx.ModelProto, data: bytes) -> None:
        st = self._state
        self._proto, self._data = proto, data
        initializers = {i.name for i in proto.graph.initializer}
        for value, is_input in [(v, True) for v in proto.graph.input] + [
            (v, False) for v in proto.graph.output
        ]:
            if value.name in initializers:
                continue
            t = value.type.tensor_type
            shape = st.classes["Dims"](
                d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim
            )
            dtype = getattr(st.classes["DataType"], _ONNX_TO_TRT[t.elem_type])
            tensor = st.classes["ITensor"](value.name, shape, dtype, is_input)
            (self._inputs if is_input else self._outputs).append(tensor)


class _ParserError(_Api):
    def __init__(self, node: int, desc: str, name: str = "", op: str = "") -> None:
        self._node, self._desc, self._name, self._op = node, desc, name, op

    def code(self) -> Any:
        return self._state.classes["ErrorCode"].UNSUPPORTED_NODE

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def file(self) -> str:
        return "ModelImporter.cpp"

    def func(self) -> str:
        return "parseGraph"

    def line(self) -> int:
        return 0


class _ParserError10(_ParserError):
    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op


class _OnnxParser(_Api):
    def __init__(self, network: Any, logger: Any) -> None:
        self._network, self._logger = network, logger
        self._errors: list[Any] = []

    num_errors = property(lambda self: len(self._errors))

    def get_error(self, index: int) -> Any:
        return self._errors[index]

    def clear_errors(self) -> None:
        self._errors = []

    def _error(self, node: int, desc: str, name: str = "", op: str = "") -> None:
        self._errors.append(self._state.classes["ParserError"](node, desc, name, op))
        _emit(self._logger, "ERROR", f"ModelImporter.cpp: {desc}")

    def parse(self, model: Any, path: str | None = None) -> bool:
        if self._network.has_implicit_batch_dimension:
            self._error(-1, "This version of the ONNX parser only supports TensorRT "
                        "INetworkDefinitions with an explicit batch dimension. Please ensure the "
                        "network was created using the EXPLICIT_BATCH "
                        "NetworkDefinitionCreationFlag.")  # fmt: skip
            return False
        data = bytes(model)
        try:
            proto = onnx.load_model_from_string(data)
        except Exception:
            self._error(-1, "Failed to parse ONNX model from file (not a protobuf)")
            return False
        known = supported_ops()
        for i, node in enumerate(proto.graph.node):
            if node.domain not in ("", "ai.onnx") or node.op_type not in known:
                self._error(
                    i, f"No importer registered for op: {node.op_type}. Attempting to import "
                    "as plugin.", node.name, node.op_type,
                )  # fmt: skip
        if self._errors:
            return False
        self._network._load(proto, data)
        return True


# -- builder -----------------------------------------------------------------------------------
class _IOptimizationProfile(_Api):
    def __init__(self) -> None:
        self._shapes: dict[str, list[tuple[int, ...]]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self._shapes[input] = [tuple(min), tuple(opt), tuple(max)]

    def get_shape(self, input: str) -> list[Any]:
        return [self._state.classes["Dims"](s) for s in self._shapes.get(input, [])]


class _ITimingCache(_Api):
    def __init__(self, keys: set[str], origin: str) -> None:
        self._keys, self._origin = set(keys), origin

    def serialize(self) -> Any:
        data = json.dumps({"origin": self._origin, "keys": sorted(self._keys)}).encode()
        return self._state.classes["IHostMemory"](data)

    def combine(self, input_cache: Any, ignore_mismatch: bool) -> bool:
        self._keys |= input_cache._keys
        return True

    def reset(self) -> bool:
        self._keys = set()
        return True


class _IBuilderConfig(_Api):
    DLA_core = -1
    default_device_type: Any = None
    profiling_verbosity: Any = None
    builder_optimization_level = 3
    avg_timing_iterations = 1

    def __init__(self) -> None:
        st = self._state
        self._flags = 0
        self._pools: dict[str, int] = {}
        self._profiles: list[Any] = []
        self._cache: Any = None
        self.default_device_type = st.classes["DeviceType"].GPU
        self.profiling_verbosity = st.classes["ProfilingVerbosity"].LAYER_NAMES_ONLY
        self._flags |= 1 << int(st.classes["BuilderFlag"].TF32)  # "Enabled by default" (NvInfer.h)

    flags = property(lambda self: self._flags)
    num_optimization_profiles = property(lambda self: len(self._profiles))

    def set_flag(self, flag: Any) -> None:
        self._flags |= 1 << int(flag)

    def clear_flag(self, flag: Any) -> None:
        self._flags &= ~(1 << int(flag))

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags >> int(flag) & 1)

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self._pools[pool.name] = int(pool_size)

    def get_memory_pool_limit(self, pool: Any) -> int:
        return self._pools.get(pool.name, 0)

    def add_optimization_profile(self, profile: Any) -> int:
        for low, opt, high in profile._shapes.values():
            if not all(a <= b <= c for a, b, c in zip(low, opt, high, strict=True)):
                return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: Any) -> Any:
        st, data = self._state, bytes(serialized_timing_cache)
        cls = st.classes["ITimingCache"]
        if not data:
            return cls(set(), _origin(st))
        blob = json.loads(data)
        return cls(set(blob["keys"]), blob["origin"])

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        if cache._origin != _origin(self._state) and not ignore_mismatch:
            return False
        self._cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._cache


class _IBuilderConfig10(_IBuilderConfig):
    progress_monitor: Any = None


def _no_dla(st: _State) -> bool:
    """DLA is absent in TensorRT 11.0-11.3 (NVIDIA's 10.x -> 11.x Jetson migration guide)."""
    return st.major == 11 and int(st.version.split(".")[1]) <= 3


def _origin(st: _State) -> str:
    return f"{st.version}/sm{st.device().sm}"


class _Builder(_Api):
    max_threads = 0

    def __init__(self, logger: Any) -> None:
        self._logger = _global_logger(self._state, logger, "createInferBuilder")

    num_DLA_cores = property(lambda self: 0 if _no_dla(self._state) else self._state.dla_cores)
    platform_has_tf32 = property(lambda self: True)
    logger = property(lambda self: self._logger)

    def create_network(self, flags: int = 0) -> Any:
        return self._state.classes["INetworkDefinition"](flags)

    def create_builder_config(self) -> Any:
        return self._state.classes["IBuilderConfig"]()

    def create_optimization_profile(self) -> Any:
        return self._state.classes["IOptimizationProfile"]()

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        st = self._state
        rec = _record(st, network, config)
        st.builds.append(rec)
        error = _build_error(st, network, config, rec)
        if error is not None:
            _emit(self._logger, "ERROR", error)
            return None
        layers = _layers(st, network, config)
        keys = {f"{layer['LayerType']}:{layer['Name']}" for layer in layers}
        if config._cache is not None:
            rec.cache_keys_before = len(config._cache._keys)
            rec.cache_hits = len(keys & config._cache._keys)
            config._cache._keys |= keys
        rec.ok = True
        return st.classes["IHostMemory"](_plan(st, network, config, layers))


class _Builder10(_Builder):
    platform_has_fast_fp16 = property(lambda self: True)


def _record(st: _State, network: Any, config: Any) -> BuildRecord:
    flags = st.classes["BuilderFlag"]
    return BuildRecord(
        network_flags=network._flags,
        strongly_typed=network._strongly_typed,
        builder_flags=[n for n in flags._members if config._flags >> int(getattr(flags, n)) & 1],
        pools=dict(config._pools),
        profiles=[dict(p._shapes) for p in config._profiles],
        device_type=config.default_device_type.name,
        dla_core=config.DLA_core,
        verbosity=config.profiling_verbosity.name,
    )


def _fp16_flag(st: _State, config: Any) -> bool:
    flags = st.classes["BuilderFlag"]
    return "FP16" in flags._members and bool(config._flags >> int(flags.FP16) & 1)


def _build_error(st: _State, network: Any, config: Any, rec: BuildRecord) -> str | None:
    if st.fail_build:
        return st.fail_build
    if network._proto is None:
        return "Network must have at least one output"
    if network._strongly_typed and _fp16_flag(st, config):
        return ("IBuilderConfig::setFlag: Error Code 3: API Usage Error (BuilderFlag::kFP16 is "
                "not allowed for strongly typed networks)")  # fmt: skip
    for tensor in network._inputs:
        if -1 in tuple(tensor.shape):
            if not config._profiles:
                return ("Network has dynamic or shape inputs, but no optimization profile has "
                        "been defined.")  # fmt: skip
            low, _, high = config._profiles[0]._shapes.get(tensor.name, [None] * 3)
            if low is None:
                return f"Optimization profile is missing values for input '{tensor.name}'"
            if any(s != -1 and s not in (a, b) for s, a, b in zip(tensor.shape, low, high,
                                                                 strict=True)):  # fmt: skip
                return f"profile for '{tensor.name}' does not match its static dimensions"
    if rec.device_type == "DLA" and not 0 <= rec.dla_core < st.dla_cores:
        return f"DLA core {rec.dla_core} requested, but only {st.dla_cores} available"
    return _monitor(st, config, rec)


def _monitor(st: _State, config: Any, rec: BuildRecord) -> str | None:
    monitor = getattr(config, "progress_monitor", None) if st.major >= 10 else None
    if monitor is None:
        return None
    for phase in ("Building engine", "Tactic selection"):
        monitor.phase_start(phase, None if phase == "Building engine" else "Building engine", 2)
        rec.progress_phases.append(phase)
        for step in range(2):
            if st.cancel_build or not monitor.step_complete(phase, step):
                return "Engine build was cancelled by the progress monitor"
    for phase in reversed(rec.progress_phases):
        monitor.phase_finish(phase)
    return None


def _value_types(proto: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(proto)
    graph = inferred.graph
    types_ = {i.name: i.data_type for i in graph.initializer}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        types_[value.name] = value.type.tensor_type.elem_type
    return types_


def _layers(st: _State, network: Any, config: Any) -> list[dict[str, Any]]:
    """Fake engine layers: one per ONNX node, in the precision the typing rules give."""
    proto = network._proto
    types_ = _value_types(proto)
    weak_half = _fp16_flag(st, config) and st.fp16_kernels
    layers = []
    for i, node in enumerate(proto.graph.node):
        typed = network._strongly_typed or node.op_type == "Cast" or not weak_half

        def precision(name: str, typed: bool = typed) -> str:
            return _ONNX_TO_TRT.get(types_.get(name, 1), "FLOAT") if typed else "HALF"

        layers.append({
            "Name": node.name or f"{node.op_type}_{i}",
            "LayerType": _LAYER_TYPES.get(node.op_type, "PointWiseV2"),
            "Inputs": [(n, precision(n)) for n in node.input[:1]],
            "Outputs": [(n, precision(n)) for n in node.output[:1]],
        })  # fmt: skip
    if weak_half:  # FP32 network I/O around FP16 kernels: reformat layers at the boundary
        first, last = proto.graph.input[0].name, proto.graph.output[0].name
        layers.insert(
            0,
            {
                "Name": "Reformatting CopyNode for Input Tensor 0",
                "LayerType": "Reformat",
                "Inputs": [(first, "FLOAT")],
                "Outputs": [(first, "HALF")],
            },
        )
        layers.append(
            {
                "Name": "Reformatting CopyNode for Output Tensor 0",
                "LayerType": "Reformat",
                "Inputs": [(last, "HALF")],
                "Outputs": [(last, "FLOAT")],
            }
        )
    return _myelin(st, layers, strong=network._strongly_typed)  # fmt: skip


def _myelin(st: _State, layers: list[dict[str, Any]], strong: bool) -> list[dict[str, Any]]:
    """Fuse as Myelin does. 11.x: every layer is a Myelin kernel ("<node>_myl0_<i>", kgen).
    10.x: one {ForeignNode[...]} region for all compute but the last layer, which stays a
    plain layer; weakly typed, TensorRT may run it in FP32 beside the FP32 network output."""
    if st.major >= 11:
        return [dict(x, Name=f"{x['Name']}_myl0_{i}", LayerType="kgen") if x["LayerType"] not in
                ("Reformat", "Cast") else x for i, x in enumerate(layers)]  # fmt: skip
    compute = [i for i, x in enumerate(layers) if x["LayerType"] not in ("Reformat", "Cast")]
    if st.major < 10 or len(compute) < 3:
        return layers
    first, last = compute[0], compute[-1]
    body, tail = layers[first:last], layers[last]
    inner = body[-1]["Outputs"][0]
    region = {"Name": f"{{ForeignNode[{body[0]['Name']}...{body[-1]['Name']}]}}",
              "LayerType": "Myelin", "Inputs": body[0]["Inputs"], "Outputs": [inner]}  # fmt: skip
    if strong:
        return [*layers[:first], region, *layers[last:]]
    tail32 = dict(tail, Inputs=[(n, "FLOAT") for n, _ in tail["Inputs"]],
                  Outputs=[(n, "FLOAT") for n, _ in tail["Outputs"]])  # fmt: skip
    moved = [] if inner[1] == "FLOAT" else [{
        "Name": f"Reformatting CopyNode for Input Tensor 0 to {tail['Name']}",
        "LayerType": "Reformat", "Inputs": [inner], "Outputs": [(inner[0], "FLOAT")]}]  # fmt: skip
    after = [x for x in layers[last + 1 :] if not x["Name"].endswith("Output Tensor 0")]
    return [*layers[:first], region, *moved, tail32, *after]


def _plan(st: _State, network: Any, config: Any, layers: list[dict[str, Any]]) -> bytes:
    profiles = config._profiles[0]._shapes if config._profiles else {}
    io = []
    for tensor in [*network._inputs, *network._outputs]:
        shape = list(tensor.shape)
        io.append({
            "name": tensor.name, "input": tensor.is_network_input, "dtype": tensor.dtype.name,
            "shape": shape,
            "profile": [list(s) for s in profiles.get(tensor.name, [shape] * 3)],
        })  # fmt: skip
    dla = config.DLA_core if config.default_device_type.name == "DLA" else None
    header = {
        "version": st.version, "sm": st.device().sm, "io": io, "layers": layers,
        "verbosity": config.profiling_verbosity.name, "dla_core": dla,
    }  # fmt: skip
    head = json.dumps(header).encode()
    return MAGIC + len(head).to_bytes(8, "little") + head + network._data


# -- runtime -----------------------------------------------------------------------------------
class _Runtime(_Api):
    DLA_core = -1

    def __init__(self, logger: Any) -> None:
        self._logger = _global_logger(self._state, logger, "createInferRuntime")

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any:
        st, data = self._state, bytes(serialized_engine)
        if not data.startswith(MAGIC):
            _emit(
                self._logger,
                "ERROR",
                "IRuntime::deserializeCudaEngine: Error Code 1: "
                "Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed.)",
            )
            return None  # fmt: skip
        size = int.from_bytes(data[8:16], "little")
        header = json.loads(data[16 : 16 + size])
        if header["version"] != st.version:
            _emit(
                self._logger,
                "ERROR",
                "The engine plan file is not compatible with this "
                f"version of TensorRT, expecting library version {st.version} got "
                f"{header['version']}, please rebuild.",
            )
            return None  # fmt: skip
        if header["sm"] != st.device().sm:
            _emit(
                self._logger,
                "ERROR",
                "The engine plan file is generated on an incompatible "
                f"device, expecting compute {st.device().sm} got compute {header['sm']}, "
                "please rebuild.",
            )
            return None  # fmt: skip
        if header["dla_core"] is not None:
            st.dla_loads.append(self.DLA_core)  # the core it will run on: the runtime's
        return st.classes["ICudaEngine"](header, data[16 + size :])

    def __del__(self) -> None:
        _check_binding(self._state, "Runtime")


def _check_binding(st: _State, what: str) -> None:
    """TensorRT frees device memory when these objects go: it must be in their CUDA context."""
    if not st.cuda.current:
        st.freed_late.append(what)


class _ICudaEngine(_Api):
    def __init__(self, header: dict[str, Any], onnx_bytes: bytes) -> None:
        self._header, self._onnx = header, onnx_bytes
        self._io = {t["name"]: t for t in header["io"]}
        self._session: Any = None

    def __del__(self) -> None:
        _check_binding(self._state, "ICudaEngine")

    num_io_tensors = property(lambda self: len(self._io))
    num_layers = property(lambda self: len(self._header["layers"]))
    num_optimization_profiles = property(lambda self: 1)
    name = property(lambda self: "fake_engine")

    def get_tensor_name(self, index: int) -> str:
        return list(self._io)[index]

    def get_tensor_mode(self, name: str) -> Any:
        modes = self._state.classes["TensorIOMode"]
        return modes.INPUT if self._io[name]["input"] else modes.OUTPUT

    def get_tensor_dtype(self, name: str) -> Any:
        return getattr(self._state.classes["DataType"], self._io[name]["dtype"])

    def get_tensor_shape(self, name: str) -> Any:
        return self._state.classes["Dims"](self._io[name]["shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Any]:
        if profile_index != 0 or not self._io[name]["input"]:
            raise RuntimeError(f"get_tensor_profile_shape: '{name}' is not an input of profile "
                               f"{profile_index}")  # fmt: skip
        return [self._state.classes["Dims"](s) for s in self._io[name]["profile"]]

    def create_execution_context(self) -> Any:
        return self._state.classes["IExecutionContext"](self)

    def create_engine_inspector(self) -> Any:
        return self._state.classes["EngineInspector"](self)

    def serialize(self) -> Any:
        return None


class _EngineInspector(_Api):
    execution_context: Any = None

    def __init__(self, engine: Any) -> None:
        # 8.5's binding has no keep_alive<0, 1> on create_engine_inspector (pyCore.cpp at
        # release/8.5); 8.6 added it. Without it the engine may die under the inspector.
        st = self._state
        self._weak = (st.major, int(st.version.split(".")[1])) < (8, 6)
        self._ref = weakref.ref(engine) if self._weak else (lambda: engine)

    @property
    def _engine(self) -> Any:
        engine = self._ref()
        if engine is None:
            self._state.use_after_free.append("EngineInspector used a freed engine")
            raise RuntimeError("EngineInspector: the engine was destroyed")
        return engine

    def __del__(self) -> None:
        if self._weak and self._ref() is None:
            self._state.use_after_free.append("EngineInspector outlived its engine")

    def _layer(self, layer: dict[str, Any]) -> Any:
        st, header = self._state, self._engine._header
        if header["verbosity"] == "NONE":
            return None
        if header["verbosity"] != "DETAILED":
            return layer["Name"]

        def tensor(name: str, dtype: str) -> dict[str, Any]:
            info = {"Name": name, "Location": "Device", "Dimensions": []}
            if st.major >= 11:  # type and layout as separate keys (TensorRT's trt_perf tool)
                return info | {"Datatype": _TYPE_11.get(dtype, dtype),
                               "Format": "Row major linear (kLINEAR)"}  # fmt: skip
            return info | {"Format/Datatype": _FORMAT_10.get(dtype, dtype)}

        return {
            "Name": layer["Name"], "LayerType": layer["LayerType"],
            "Inputs": [tensor(*t) for t in layer["Inputs"]],
            "Outputs": [tensor(*t) for t in layer["Outputs"]],
            "TacticValue": "0x0000000000000001",
        }  # fmt: skip

    def get_layer_information(self, layer_index: int, format: Any) -> str:
        return json.dumps(self._layer(self._engine._header["layers"][layer_index]))

    def get_engine_information(self, format: Any) -> str:
        layers = [self._layer(x) for x in self._engine._header["layers"]]
        if format.name == "ONELINE":
            return "\n".join(json.dumps(x) for x in layers if x is not None)
        info: dict[str, Any] = {"Layers": [x for x in layers if x is not None]}
        if self._state.major >= 11:
            info["I/O Tensors"] = [{"Name": n, "IOMode": "Input" if t["input"] else "Output"}
                                   for n, t in self._engine._io.items()]  # fmt: skip
        else:
            info["Bindings"] = list(self._engine._io)
        return json.dumps(info)


class _IExecutionContext(_Api):
    name = ""
    debug_sync = False

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}

    def __del__(self) -> None:
        _check_binding(self._state, "IExecutionContext")

    engine = property(lambda self: self._engine)

    def set_input_shape(self, name: str, shape: Any) -> bool:
        info = self._engine._io.get(name)
        if info is None or not info["input"]:
            return False
        shape = tuple(int(d) for d in shape)
        low, _, high = info["profile"]
        if len(shape) != len(info["shape"]):
            return False
        if not all(a <= s <= b for s, a, b in zip(shape, low, high, strict=True)):
            return False  # "IExecutionContext::setInputShape: ... out of profile bounds"
        self._shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> Any:
        dims, info = self._state.classes["Dims"], self._engine._io[name]
        if info["input"]:
            return dims(self._shapes.get(name, info["shape"]))
        inputs = [n for n, t in self._engine._io.items() if t["input"]]
        batch = self._shapes[inputs[0]][0] if inputs[0] in self._shapes else -1
        return dims(batch if d == -1 else d for d in info["shape"])

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in self._engine._io:
            return False
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def execute_async_v3(self, stream_handle: int) -> bool:
        io = self._engine._io
        if any(t["input"] and n not in self._shapes for n, t in io.items()):
            return False  # "not all input shapes are specified"
        if set(self._addresses) != set(io):
            return False  # "address is not set for tensor ..."
        for name in (n for n, t in io.items() if t["input"]):
            self._read(name)  # bounds-check the bindings now, as TensorRT validates them
        self._state.cuda.enqueue(stream_handle, self._run)
        return True

    def _read(self, name: str) -> np.ndarray:
        dtype = np.dtype(_NUMPY[self._engine._io[name]["dtype"]])
        shape = tuple(self.get_tensor_shape(name))
        nbytes = int(np.prod(shape)) * dtype.itemsize
        raw = self._state.cuda.device_bytes(self._addresses[name], nbytes)
        return raw.view(dtype).reshape(shape).copy()

    def _run(self) -> None:
        """The "kernel": ONNX Runtime on what is in device memory when the stream gets here."""
        io, cuda = self._engine._io, self._state.cuda
        feeds = {n: self._read(n) for n, t in io.items() if t["input"]}
        outputs = self._engine_session().run(None, feeds)
        names = [n for n, t in io.items() if not t["input"]]
        for name, value in zip(names, outputs, strict=True):
            expected = tuple(self.get_tensor_shape(name))
            assert value.shape == expected, (value.shape, expected)
            data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
            cuda.device_bytes(self._addresses[name], data.size)[:] = data

    def _engine_session(self) -> Any:
        import onnxruntime as ort

        if self._engine._session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            self._engine._session = ort.InferenceSession(
                self._engine._onnx, options, providers=["CPUExecutionProvider"]
            )
        return self._engine._session


# -- the module ---------------------------------------------------------------------------------
class FakeTrtModule(types.ModuleType):
    """The module object: records public attribute reads like the classes do."""

    _st: _State

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and sys._getframe(1).f_globals.get("__name__") != __name__:
            object.__getattribute__(self, "_st").used.add(("", name))
        return super().__getattribute__(name)


def _enum(st: _State, stub: str, members: list[str] | dict[str, int]) -> type:
    values = members if isinstance(members, dict) else {m: i for i, m in enumerate(members)}
    cls = _Rec(stub.split(".")[-1], (_Enum,), {"_st": st, "_stub_name": stub})
    type.__setattr__(cls, "_members", list(values))
    for name, value in values.items():
        type.__setattr__(cls, name, cls(name, value))
    return cls


def make_fake_trt(
    version: str = "10.3.0",
    *,
    cuda: FakeCuda | None = None,
    fp16_kernels: bool = True,
    dla_cores: int = 0,
    fail_build: str | None = None,
    cancel_build: bool = False,
) -> Any:
    """A fresh fake `tensorrt` module for `version` (see the module docstring)."""
    major = int(version.split(".")[0])
    st = _State(version, major, cuda or FakeCuda(), fp16_kernels, dla_cores, fail_build,
                cancel_build)  # fmt: skip
    mod = FakeTrtModule("tensorrt")
    object.__setattr__(mod, "_st", st)
    mod.__version__ = version
    flags = _BUILDER_FLAGS_85 if major < 10 else _BUILDER_FLAGS_10
    network_flags = {8: ["EXPLICIT_BATCH"], 10: ["EXPLICIT_BATCH", "STRONGLY_TYPED"]}
    enums: dict[str, list[str] | dict[str, int]] = {
        "BuilderFlag": [f for f in flags if major < 11 or f not in _REMOVED_IN_11],
        "NetworkDefinitionCreationFlag": network_flags.get(major, {"STRONGLY_TYPED": 1}),
        "DataType": _DATATYPES_85 if major < 10 else _DATATYPES_10,
        "MemoryPoolType": ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM"],
        "DeviceType": ["GPU", "DLA"],
        "ProfilingVerbosity": ["LAYER_NAMES_ONLY", "NONE", "DETAILED"],
        "LayerInformationFormat": ["ONELINE", "JSON"],
        "TensorIOMode": ["NONE", "INPUT", "OUTPUT"],
        "ErrorCode": ["SUCCESS", "INTERNAL_ERROR", "MEM_ALLOC_FAILED", "MODEL_DESERIALIZE_FAILED",
                      "INVALID_VALUE", "INVALID_GRAPH", "INVALID_NODE", "UNSUPPORTED_GRAPH",
                      "UNSUPPORTED_NODE"],
        "ILogger.Severity": ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"],
    }  # fmt: skip
    for stub, members in enums.items():
        cls = _enum(st, stub, members)
        st.classes[stub] = cls
        if "." not in stub:
            setattr(mod, stub, cls)
    newer = major >= 10
    bases = {
        "Dims": _Dims, "IHostMemory": _IHostMemory, "ITensor": _ITensor, "ILogger": _ILogger,
        "Logger": _Logger, "INetworkDefinition": _INetworkDefinition,
        "ParserError": _ParserError10 if newer else _ParserError, "OnnxParser": _OnnxParser,
        "IOptimizationProfile": _IOptimizationProfile, "ITimingCache": _ITimingCache,
        "IBuilderConfig": _IBuilderConfig10 if newer else _IBuilderConfig,
        "Builder": _Builder10 if major < 11 else _Builder, "Runtime": _Runtime,
        "ICudaEngine": _ICudaEngine, "EngineInspector": _EngineInspector,
        "IExecutionContext": _IExecutionContext,
    }  # fmt: skip
    if newer:
        bases["IProgressMonitor"] = _IProgressMonitor
    for stub, base in bases.items():
        parents = (st.classes["ILogger"], base) if stub == "Logger" else (base,)
        st.classes[stub] = _Rec(stub, parents, {"_st": st, "_stub_name": stub})
        setattr(mod, stub, st.classes[stub])
    severity = st.classes["ILogger.Severity"]
    for logger in (st.classes["ILogger"], st.classes["Logger"]):
        type.__setattr__(logger, "Severity", severity)
        for name in severity._members:
            type.__setattr__(logger, name, getattr(severity, name))
    mod.nptype = lambda trt_type: _NUMPY[trt_type.name]
    mod.volume = lambda iterable: int(np.prod(list(iterable)))
    return mod


def fake_trt_used(mod: Any) -> set[tuple[str, str]]:
    """(class, attribute) pairs read so far; class "" is the module."""
    return set(object.__getattribute__(mod, "_st").used)


def fake_trt_builds(mod: Any) -> list[BuildRecord]:
    return list(object.__getattribute__(mod, "_st").builds)


def fake_trt_state(mod: Any) -> _State:
    """The fake's state: logger, dla_loads, freed_late, use_after_free, fail_build, ..."""
    return object.__getattribute__(mod, "_st")  # type: ignore[no-any-return]


__all__ = [
    "VERSIONS", "BuildRecord", "fake_trt_builds", "fake_trt_state", "fake_trt_used",
    "make_fake_trt",
]  # fmt: skip
