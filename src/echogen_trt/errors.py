"""One error channel for everything a user can cause.

`EchogenError` and its subclasses are user-facing: the CLI prints them as "error: ..." and exits
with status 1, without a traceback. Anything else is a bug and keeps its traceback. Messages read
"subject | problem. Expected X, got Y. Hint: fix".
"""

from __future__ import annotations


class EchogenError(Exception):
    """Base class for errors caused by input, configuration or the environment."""


class ConfigError(EchogenError):
    """An option, preset or config file is invalid."""


class DataError(EchogenError):
    """A dataset file or tree is missing, unreadable or inconsistent."""


class CheckpointError(EchogenError):
    """A checkpoint is missing, corrupt or from an incompatible version."""


class TrainingError(EchogenError):
    """Training diverged or cannot continue (e.g. a non-finite loss)."""


class ExportError(EchogenError):
    """ONNX export or its verification failed."""


class EngineBuildError(EchogenError):
    """A TensorRT engine could not be built, or was built in the wrong precision."""


class EngineMismatch(EchogenError):
    """An engine's provenance does not match this machine (TensorRT version, GPU, ONNX)."""


class BackendUnavailable(EchogenError):
    """A backend's packages or hardware are missing; the message names the pip extra."""


class InputMismatch(EchogenError):
    """A tensor or file does not match what the model expects (name, dtype, shape, values)."""


class OutputError(EchogenError):
    """A file or folder cannot be written: no permission, a file in the way, a dangling
    symlink, a full disk. Raised by `fileio`, so every command reports it the same way."""


class InternalError(Exception):
    """A bug in echogen-trt. Deliberately not an EchogenError, so it keeps its traceback."""
