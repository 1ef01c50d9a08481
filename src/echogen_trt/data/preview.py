"""Contact sheets: a grid of colour-coded mask / echo image pairs, to judge a dataset by eye.

Works on in-memory `ViewRecord`s or on a CAMUS tree (either layout, read with `camus.read_view`).
Each cell is resized to a square (the network's view of the data) and labelled with the patient,
view, phase and image quality.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from echogen_trt.artifacts.labels import PALETTE
from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.data.records import ViewRecord
from echogen_trt.errors import ConfigError, DataError
from echogen_trt.fileio import check_outputs, show_path

logger = logging.getLogger(__name__)


def contact_sheet(
    source: Sequence[ViewRecord] | Path | str,
    out_png: Path | str,
    n: int = 8,
    *,
    view: str = "4CH",
    phase: str = "ED",
    size: int = REFERENCE_SIZE,
    columns: int = 2,
) -> Path:
    """Write a PNG grid of up to `n` (mask | image) pairs and return its path.

    `source` is a list of records or the root of a CAMUS tree; for a tree, the first `n`
    patients' `view` is read. Pairs are laid out `columns` to a row.
    """
    if n < 1 or size < 32 or columns < 1:
        raise ConfigError(
            f"contact sheet | n={n}, size={size}, columns={columns}. Expected n >= 1, "
            "size >= 32 and columns >= 1."
        )
    if phase not in ("ED", "ES"):
        raise ConfigError(f"contact sheet phase | {phase!r}. Expected 'ED' or 'ES'.")
    check_sheet_path(out_png)
    records = _records(source, n, view)
    cells = [_pair(rec, phase, size) for rec in records[:n]]
    blank = np.zeros_like(cells[0])
    cells += [blank] * (-len(cells) % columns)
    rows = [np.hstack(cells[i : i + columns]) for i in range(0, len(cells), columns)]
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.vstack(rows)):
        raise DataError(f"contact sheet {out} | could not be written. Hint: use a .png path.")
    logger.info("contact sheet with %d pairs written to %s", len(cells), out)
    return out


def check_sheet_path(out_png: str | os.PathLike[str], what: str = "contact sheet") -> Path:
    """ConfigError (before any work) unless `out_png` names an image file OpenCV can write."""
    out = Path(out_png)
    check_outputs({what: out}, inputs={})
    if not cv2.haveImageWriter(str(out)):
        raise ConfigError(
            f"{what} {show_path(out)} | no image suffix OpenCV can write ({out.suffix or 'none'})"
            f". Expected e.g. .png or .jpg. Hint: --preview {out.stem or 'sheet'}.png"
        )
    return out


def _records(source: Sequence[ViewRecord] | Path | str, n: int, view: str) -> list[ViewRecord]:
    if isinstance(source, (str, Path)):
        from echogen_trt.data import camus

        root = Path(source)
        patients = camus.list_patients(root)[:n]
        if not patients:
            raise DataError(
                f"contact sheet {root} | no patient folders found. Expected a CAMUS tree."
            )
        return [camus.read_view(root, p, view) for p in patients]
    records = [r for r in source if r.view == view] or list(source)
    if not records:
        raise DataError("contact sheet | no records given. Expected at least one ViewRecord.")
    return records


def _pair(rec: ViewRecord, phase: str, size: int) -> np.ndarray:
    """One cell: coloured mask (or a grey placeholder where withheld) beside the image."""
    image = cv2.resize(rec.frame(phase), (size, size), interpolation=cv2.INTER_AREA)
    mask = rec.mask(phase)
    if mask is None:
        colour = np.full((size, size, 3), 40, np.uint8)
    else:
        colour = PALETTE[cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)]
    cell = np.hstack([colour, cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)])
    quality = rec.info.get("ImageQuality", "")
    label = f"{rec.patient} {rec.view} {phase} {quality}".strip()
    scale = size / 400
    cv2.putText(
        cell,
        label,
        (6, int(22 * scale) + 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return cell
