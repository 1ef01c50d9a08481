"""The TensorRT API as both the engine builder (export) and the TensorRT backend (runtime) use it:
the process-wide logger, the errors it collects, `trt.Dims` and `trt.DataType` in numpy terms,
and the version check.

Every function takes the `tensorrt` module as an argument (or a TensorRT object): nothing here
imports TensorRT, so this module loads without it. Callers get the module from
`runtime.availability.require_tensorrt()` (which tells a real TensorRT from its type stubs), or
inject a fake one in tests. Torch-free.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from echogen_trt.errors import BackendUnavailable, EngineMismatch

log = logging.getLogger(__name__)

MIN_VERSION = (8, 5)  # the name-based I/O API (num_io_tensors, execute_async_v3) starts here

TRT_DTYPES: dict[str, type[np.generic]] = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
}

_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING}
# TensorRT keeps one global logger pointer: a second ILogger passed to a Builder or Runtime is
# ignored (8.x warns "TensorRT maintains only a single logger pointer") and freeing the first
# can leave TensorRT calling a dead object. So one logger per TensorRT module, for the process.
_LOGGERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_LOGGERS_LOCK = threading.Lock()


def shared_logger(trt: Any) -> Any:
    """The process-wide trt.ILogger: forwards to `logging`; read errors with `trt_errors`."""
    with _LOGGERS_LOCK:
        logger = _LOGGERS.get(trt)
        if logger is None:
            logger = _LOGGERS[trt] = _make_logger(trt.ILogger)
        return logger


def _make_logger(base: Any) -> Any:
    def init(self: Any) -> None:
        base.__init__(self)  # pybind: the base must be initialised explicitly
        self._local = threading.local()

    def log_message(self: Any, severity: Any, msg: str) -> None:
        name = str(getattr(severity, "name", severity))
        level = _LEVELS.get(name, logging.DEBUG)  # TensorRT's INFO is very chatty
        if level >= logging.ERROR:
            for sink in getattr(self._local, "sinks", ()):
                sink.append(str(msg))
        log.log(level, "[TensorRT] %s", msg)

    cls = type("EchogenTrtLogger", (base,), {"__init__": init, "log": log_message})
    return cls()


@contextlib.contextmanager
def trt_errors(logger: Any) -> Iterator[list[str]]:
    """Collect the errors TensorRT logs in this thread during the block (for messages)."""
    sinks: list[list[str]] = logger._local.__dict__.setdefault("sinks", [])
    errors: list[str] = []
    sinks.append(errors)
    try:
        yield errors
    finally:
        sinks.remove(errors)


def dims(shape: Any) -> tuple[int, ...]:
    """A `trt.Dims` (tuple-like through __len__/__getitem__ only) as a tuple of ints."""
    return tuple(int(shape[i]) for i in range(len(shape)))


def numpy_dtype(trt_dtype: Any, tensor: str = "tensor") -> np.dtype[Any]:
    """numpy dtype of a `trt.DataType`; EngineMismatch for types numpy lacks (BF16, FP8)."""
    name = str(getattr(trt_dtype, "name", trt_dtype))
    if name not in TRT_DTYPES:
        raise EngineMismatch(
            f"tensor '{tensor}' | TensorRT dtype {name} has no numpy equivalent. Expected one "
            f"of {sorted(TRT_DTYPES)}. Hint: export the model with float32 or uint8 I/O."
        )
    return np.dtype(TRT_DTYPES[name])


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
