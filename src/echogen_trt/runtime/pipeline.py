"""`generate`: a folder of masks to a folder of frames, batched and pipelined, torch-free.

Reader threads decode and resize masks ahead of the model (bounded prefetch), the main thread runs
inference batch by batch, writer threads resize back and encode. OpenCV releases the GIL, so on a
Jetson the CPU work overlaps the GPU. Each bad input is reported and skipped; the rest are written.
Frames are written atomically, so an interrupted run leaves only whole frames and
`skip_existing=True` resumes it.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from echogen_trt.errors import ConfigError, EchogenError, InputMismatch
from echogen_trt.fileio import check_dir_creatable, ensure_dir, remove_stale_temps, show_path
from echogen_trt.runtime import cine, out_manifest
from echogen_trt.runtime.io import (
    MAX_PIXELS,
    is_out_of_memory,
    panel,
    read_mask_frames,
    write_frame,
)
from echogen_trt.runtime.job_plan import (
    FORMATS,
    Job,
    collect_inputs,
    plan_jobs,
    refuse_foreign_files,
    refuse_input_folder,
    shard_jobs,
    split_inside,
)
from echogen_trt.runtime.mask_to_echo import MaskToEcho, nonfinite_error
from echogen_trt.runtime.registry import resolve_kind

log = logging.getLogger(__name__)

SIZES = ("model", "original")


@dataclass
class GenerateSummary:
    """What a run did; `failed` lists (input, reason) for every input that was not written."""

    model: str
    backend: str
    out_dir: str
    total: int = 0  # inputs in this run (after --shard), written or not
    written: int = 0
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    ms_per_frame: float | None = None  # end to end: read, infer, write (wall time / frame)
    compute_ms_per_frame: float | None = None  # backend infer() time only
    elapsed_s: float = 0.0
    load_s: float = 0.0  # opening the model (not in ms_per_frame)
    detail: str = ""  # e.g. the ONNX Runtime providers in use
    stopped: str = ""  # why the run stopped before the end (a full disk), with how to resume

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"input": p, "reason": r} for p, r in self.failed]
        data["ok"] = self.ok
        return data


@dataclass
class _Loaded:
    prepared: list[np.ndarray]  # one per frame: 1 for a mask, N for a sequence
    shape: tuple[int, int]
    masks: np.ndarray | None  # (N, H, W), kept only for --overlay

    @property
    def sequence(self) -> bool:
        return len(self.prepared) > 1


def run_generate(
    inputs: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str],
    backend: str | None = None,
    batch_size: int = 8,
    recursive: bool = False,
    size: str = "model",
    fmt: str = "png",
    overlay: bool = False,
    skip_existing: bool = False,
    shard: tuple[int, int] | None = None,
    workers: int | None = None,
    progress: bool = True,
    max_pixels: int = MAX_PIXELS,
    replace_model: bool = False,
    **backend_opts: Any,
) -> GenerateSummary:
    """Generate one frame per mask file under `out_dir`, mirroring the inputs' relative paths.

    Raises ConfigError (or OutputError for an --out that cannot be created) for an unsafe or
    empty plan before any work; per-input problems go to `summary.failed` and the run goes on.
    `out_dir` is created only once the model has loaded. Masks over `max_pixels` pixels fail.
    `out_dir` records the model that wrote it; another model there is refused unless
    `replace_model` (out_manifest).
    """
    _check_options(size, fmt, shard, workers)
    out = Path(out_dir)
    check_dir_creatable(out, "--out")
    inputs = [os.fspath(i) for i in inputs]
    dirs = [Path(i) for i in inputs if Path(i).is_dir()]
    refuse_input_folder(out.resolve(), [d.resolve() for d in dirs])
    found, failed = collect_inputs(inputs, recursive=recursive)
    items, inside = split_inside(found, out)
    if inside:
        log.info("%d file(s) inside the output folder %s are not read as inputs", len(inside), out)
    if not items and not failed:
        resolved = out.resolve()
        if inputs and all(resolved in Path(i).resolve().parents for i in inputs):
            raise ConfigError(
                f"inputs {inputs} | all lie inside the output folder {out}, whose files are never "
                "read as inputs. Hint: choose an --out outside the masks."
            )
        raise ConfigError(
            f"inputs {inputs} | no mask files found. Expected PNG, BMP, TIFF, .npy or CAMUS "
            "*_gt.mhd / *_gt.nii.gz files. Hint: add --recursive for nested folders."
        )
    planned = plan_jobs(items, out, fmt=fmt, overlay=overlay, input_dirs=dirs)
    refuse_foreign_files(inside, planned, out)
    jobs = shard_jobs(planned, shard)
    summary = GenerateSummary(str(model), resolve_kind(model, backend), str(out), total=len(jobs))
    summary.failed.extend(failed)
    digest = out_manifest.check_manifest(out, model, replace=replace_model)
    _remove_stale_temps(jobs)  # of this run's targets only: what a killed run left mid-write
    if skip_existing:
        done = [j for j in jobs if _is_done(j)]
        summary.skipped_existing = len(done)
        jobs = [j for j in jobs if not _is_done(j)]
    if jobs:
        _serve(
            jobs,
            summary,
            out=out,
            max_pixels=max_pixels,
            model=model,
            backend=backend,
            batch_size=batch_size,
            size=size,
            overlay=overlay,
            workers=workers or default_workers(),
            progress=progress,
            backend_opts=backend_opts,
            digest=digest,
        )
    summary.failed.sort()
    return summary


def default_workers() -> int:
    """Reader/writer threads per pool: enough to hide PNG decode/encode behind the model."""
    return max(1, min(4, os.cpu_count() or 1))


def _check_options(size: str, fmt: str, shard: tuple[int, int] | None, workers: int | None) -> None:
    if size not in SIZES:
        raise ConfigError(f"size {size!r} | unknown. Expected one of {', '.join(SIZES)}.")
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} | unknown. Expected one of {', '.join(FORMATS)}.")
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise ConfigError(f"shard {shard} | invalid. Expected (i, n) with 0 <= i < n.")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers | {workers}. Expected an integer >= 1.")


def _remove_stale_temps(jobs: list[Job]) -> None:
    """Temporary frames a killed run left beside this run's targets (never another run's)."""
    names: dict[Path, set[str]] = {}
    for job in jobs:
        for path in (job.out, job.panel):
            if path is not None:
                names.setdefault(path.parent, set()).add(path.name)
    for folder, wanted in names.items():
        remove_stale_temps(folder, wanted)


def _is_done(job: Job) -> bool:
    if cine.preview_path(job).is_file():  # a sequence: its preview is written last
        return True
    return job.out.is_file() and (job.panel is None or job.panel.is_file())


def _serve(
    jobs: list[Job],
    summary: GenerateSummary,
    *,
    out: Path,
    max_pixels: int,
    model: str | os.PathLike[str],
    backend: str | None,
    batch_size: int,
    size: str,
    overlay: bool,
    workers: int,
    progress: bool,
    backend_opts: dict[str, Any],
    digest: str | None = None,
) -> None:
    start = time.perf_counter()
    with MaskToEcho(model, backend, batch_size, **backend_opts) as gen:
        summary.load_s = time.perf_counter() - start
        ensure_dir(out, "--out")  # only now: a model that fails to load leaves no folder
        if digest is not None:
            out_manifest.write_manifest(out, model, digest)
        summary.backend = gen.backend.name
        providers = getattr(gen.backend, "providers", None)
        summary.detail = ", ".join(providers) if providers else ""
        bar = tqdm(total=len(jobs), unit="frame", disable=None if progress else True)
        run = _Run(
            gen, summary, bar, size=size, overlay=overlay, workers=workers, max_pixels=max_pixels
        )
        loop_start = time.perf_counter()
        try:
            run.run(jobs)
        finally:
            bar.close()
            summary.elapsed_s = time.perf_counter() - start
            processed = summary.written + len(run.failed_here)
            if processed:
                summary.ms_per_frame = (time.perf_counter() - loop_start) * 1e3 / processed
            if gen.frames:
                summary.compute_ms_per_frame = gen.compute_ms / gen.frames


@contextmanager
def _per_file_memory(job: Job, doing: str) -> Iterator[None]:
    """Out of memory on one (huge) mask fails that file only; the batch goes on."""
    try:
        yield
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        raise InputMismatch(
            f"{show_path(job.src)} | out of memory {doing}. Expected a mask that fits in memory "
            "at this --size. Hint: lower --max-pixels to refuse such files up front, or drop "
            "--size original / --overlay."
        ) from err


class _Run:
    """The threaded loop: read ahead, infer in batches on this thread, write behind."""

    def __init__(
        self,
        gen: MaskToEcho,
        summary: GenerateSummary,
        bar: Any,
        *,
        size: str,
        overlay: bool,
        workers: int,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        self.gen, self.summary, self.bar = gen, summary, bar
        self.size, self.overlay, self.workers = size, overlay, workers
        self.max_pixels = max_pixels
        self.writes: deque[tuple[Job, Future[None]]] = deque()
        self.failed_here: list[tuple[str, str]] = []

    def run(self, jobs: list[Job]) -> None:
        readers = ThreadPoolExecutor(self.workers, thread_name_prefix="echogen-read")
        writers = ThreadPoolExecutor(self.workers, thread_name_prefix="echogen-write")
        try:
            self._loop(jobs, readers, writers)
            self._drain(0)
        finally:  # on interrupt: drop queued work, let in-flight (atomic) writes finish
            readers.shutdown(wait=True, cancel_futures=True)
            writers.shutdown(wait=True, cancel_futures=True)

    def _loop(
        self, jobs: list[Job], readers: ThreadPoolExecutor, writers: ThreadPoolExecutor
    ) -> None:
        chunk = self.gen.batch_size
        prefetch = max(2 * chunk, 2 * self.workers)
        pending: deque[tuple[Job, Future[_Loaded]]] = deque()
        todo = iter(jobs)
        batch: list[tuple[Job, _Loaded]] = []
        frames = 0
        while not self.summary.stopped:
            while len(pending) < prefetch and (job := next(todo, None)) is not None:
                pending.append((job, readers.submit(self._read, job)))
            if not pending:
                break
            job, future = pending.popleft()
            try:
                loaded = future.result()
                batch.append((job, loaded))
                frames += len(loaded.prepared)
            except (EchogenError, OSError) as err:
                self._fail(job, err)
            if frames >= chunk or (batch and not pending):
                self._infer(batch, writers)
                batch, frames = [], 0

    def _read(self, job: Job) -> _Loaded:
        masks = read_mask_frames(job.src, max_pixels=self.max_pixels)
        shape = (int(masks.shape[1]), int(masks.shape[2]))
        with _per_file_memory(job, "preparing it"):
            prepared = [self.gen.prepare(mask) for mask in masks]
        return _Loaded(prepared, shape, masks if self.overlay else None)

    def _infer(self, batch: list[tuple[Job, _Loaded]], writers: ThreadPoolExecutor) -> None:
        prepared = [p for _, loaded in batch for p in loaded.prepared]
        frames = self.gen.run_prepared(prepared, allow_nonfinite=True)
        bad = self.gen.last_nonfinite
        start = 0
        for job, loaded in batch:
            end = start + len(loaded.prepared)
            mine, n_bad = frames[start:end], int(bad[start:end].sum())
            start = end
            if n_bad:  # NaN/Inf would be a black frame: fail the input, write nothing
                self._fail(job, nonfinite_error(str(self.summary.model), n_bad, len(mine)))
                continue
            self.writes.append((job, writers.submit(self._write, job, loaded, mine)))
        self._drain(2 * self.gen.batch_size + self.workers)

    def _write(self, job: Job, loaded: _Loaded, frames: np.ndarray) -> None:
        with _per_file_memory(job, "writing its frame"):
            if self.size == "original":
                frames = np.stack([self.gen.restore(frame, loaded.shape) for frame in frames])
            if loaded.sequence:
                cine.write_sequence(job, list(frames), loaded.masks)
                return
            frame, mask = frames[0], loaded.masks[0] if loaded.masks is not None else None
            if job.panel is not None and mask is not None:
                write_frame(job.panel, panel(frame, mask))
            write_frame(job.out, frame)  # last: a frame on disk means its panel is there too

    def _drain(self, keep: int) -> None:
        while len(self.writes) > keep:
            job, future = self.writes.popleft()
            try:
                future.result()
            except (EchogenError, OSError) as err:
                self._fail(job, err)
                continue
            self.summary.written += 1
            self.bar.update(1)

    def _fail(self, job: Job, err: Exception) -> None:
        shown = show_path(job.src)
        reason = str(err).removeprefix(f"{shown} | ")
        log.warning("skipped %s: %s", shown, reason)
        entry = (shown, reason)
        self.summary.failed.append(entry)
        self.failed_here.append(entry)
        self.bar.update(1)
        if _out_of_space(err) and not self.summary.stopped:  # every later frame would fail too
            self.summary.stopped = (
                "the disk is full, so the run stopped after the first frame that could not be "
                "written. Hint: free space (or choose another --out), then rerun the same "
                "command with --skip-existing to resume"
            )
            log.error("stopped: %s", self.summary.stopped)


def _out_of_space(err: BaseException) -> bool:
    """Whether `err` (or the OSError behind an OutputError) is a full disk or quota."""
    for cause in (err, err.__cause__):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
    return False
