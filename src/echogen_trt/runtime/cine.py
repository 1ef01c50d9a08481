"""Sequence masks (CAMUS `*_half_sequence_gt`, 3-D .npy) in `generate`: every frame, and an
animated preview that plays ED -> ES -> ED in a loop, so a cine can be checked at a glance.

Frames go to `<out>/<stem>/frame_000.png ...` (the run's format), the preview to
`<out>/<stem>.gif` - an animated GIF by OpenCV (4.11+: `imencodeanimation`), or an MP4 by
OpenCV's VideoWriter where that is missing. The preview is written last, so its presence means
the sequence is complete (`--skip-existing`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from echogen_trt.fileio import ensure_dir, write_bytes_atomic
from echogen_trt.runtime.io import panel, write_frame
from echogen_trt.runtime.job_plan import Job

PREVIEW_FPS = 10.0


def frames_dir(job: Job) -> Path:
    """The folder of a sequence's frames: the planned frame path without its suffix."""
    return job.out.with_suffix("")


def preview_path(job: Job) -> Path:
    """`<stem>.gif`, or `<stem>.mp4` where OpenCV cannot encode animations."""
    return job.out.with_suffix(".gif" if can_write_gif() else ".mp4")


def can_write_gif() -> bool:
    return hasattr(cv2, "imencodeanimation") and hasattr(cv2, "Animation")


def write_sequence(
    job: Job, frames: Sequence[np.ndarray], masks: np.ndarray | None, fps: float = PREVIEW_FPS
) -> Path:
    """Write each frame, then the preview (mask | frame | contours panels when `masks` are
    given, as with --overlay); returns the preview's path."""
    folder = ensure_dir(frames_dir(job), "--out")
    suffix = job.out.suffix
    for index, frame in enumerate(frames):
        write_frame(folder / f"frame_{index:03d}{suffix}", frame)
    target = preview_path(job)
    loop = preview_frames(frames, masks)
    if target.suffix == ".gif":
        write_bytes_atomic(target, encode_gif(loop, fps))
    else:
        write_mp4(target, loop, fps)
    return target


def preview_frames(frames: Sequence[np.ndarray], masks: np.ndarray | None) -> list[np.ndarray]:
    """The preview's BGR frames, ED -> ES -> back (no jump when it loops): the frames alone, or
    mask | frame | contours panels when `masks` are given. `serve`'s cine export uses it too."""
    shown = [
        panel(frame, mask) if masks is not None else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        for frame, mask in zip(frames, masks if masks is not None else frames, strict=True)
    ]
    return shown + shown[-2:0:-1]


def encode_mp4(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """The bytes of an MP4 of BGR frames (OpenCV writes files only: a temporary one)."""
    with tempfile.TemporaryDirectory(prefix="echogen-cine-") as folder:
        target = Path(folder) / "cine.mp4"
        write_mp4(target, frames, fps)
        return target.read_bytes()


def encode_gif(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """An endlessly looping animated GIF of BGR uint8 frames."""
    animation = cv2.Animation()
    animation.frames = [np.ascontiguousarray(f) for f in frames]
    animation.durations = [round(1000.0 / fps)] * len(frames)
    animation.loop_count = 0
    ok, data = cv2.imencodeanimation(".gif", animation)
    if not ok:
        raise OSError("OpenCV could not encode the GIF preview")
    return bytes(np.asarray(data).tobytes())


def write_mp4(target: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """An MP4 (mp4v) of BGR frames, written beside `target` and moved into place."""
    height, width = frames[0].shape[:2]
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".mp4", dir=target.parent)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(temp, cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write MP4 here (no codec) for {target}")
        for frame in frames:
            writer.write(np.ascontiguousarray(frame))
        writer.release()
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
