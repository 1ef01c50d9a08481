"""What one export wrote (`ExportResult`), and the one way an exported model is written.

Shared by the torch export (`onnx_export`) and the FP16 conversion (`fp16`), so both stamp the
metadata, write the file and describe it the same way. Torch-free.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.artifacts.onnx_file import input_batch, opset_of, save_model, write_meta
from echogen_trt.export.ops import op_counts

if TYPE_CHECKING:
    import onnx

    from echogen_trt.export.verify import VerifyReport


@dataclass
class ExportResult:
    """What one export wrote: where, what it holds, how long it took, and its verification."""

    path: Path
    meta: ModelMeta
    batch: int | None  # None: dynamic batch axis
    opset: int
    size_bytes: int
    seconds: float
    op_counts: dict[str, int] = field(default_factory=dict)
    exporter: str = "torch.onnx dynamo"
    verify: VerifyReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's --json output)."""
        return {
            "path": str(self.path),
            "precision": self.meta.precision,
            "io": self.meta.io,
            "batch": self.batch,
            "opset": self.opset,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "op_counts": dict(self.op_counts),
            "exporter": self.exporter,
            "meta": asdict(self.meta),
            "verify": self.verify.to_dict() if self.verify is not None else None,
        }


def save_export(
    model: onnx.ModelProto, meta: ModelMeta, path: str | os.PathLike[str], started: float
) -> ExportResult:
    """Stamp `meta` (and a doc string) into `model`, write it atomically to `path`, and
    describe the file; `started` is the `time.perf_counter()` the export began at."""
    model.doc_string = f"echogen-trt generator ({meta.experiment}, {meta.precision}, io={meta.io})"
    write_meta(model, meta)
    nbytes = save_model(model, path)
    return ExportResult(
        path=Path(path),
        meta=meta,
        batch=input_batch(model),
        opset=opset_of(model),
        size_bytes=nbytes,
        seconds=time.perf_counter() - started,
        op_counts=op_counts(model),
    )
