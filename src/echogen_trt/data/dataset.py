"""Mask/frame pairs for training and evaluation, loaded the way the reference model was trained.

One call turns a CAMUS tree (either layout) into arrays: the chosen split's patients, one view
and phase each (or ED and ES, "both"; or the labelled half-sequence frames between them, "seq"),
masks resized by nearest neighbour with the experiment's unkept labels zeroed, frames resized
(nearest by default, like the reference) and scaled to [0, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from echogen_trt.artifacts.labels import DEFAULT_EXPERIMENT, kept_labels, select_labels
from echogen_trt.artifacts.model_meta import REFERENCE_SIZE
from echogen_trt.artifacts.preprocess import (
    IMAGE_INTERPOLATIONS,
    check_size,
    image_to_unit,
    resize_image,
    resize_mask,
)
from echogen_trt.data.camus import VIEWS, detect_layout, read_view
from echogen_trt.data.camus_write import patient_dir
from echogen_trt.data.records import ViewRecord
from echogen_trt.data.splits import SPLIT_NAMES, resolve_split
from echogen_trt.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PHASES = ("ED", "ES")
# "both": ED then ES of each patient (the reference trained on ED only); "seq": the frames strictly
# between ED and ES of the labelled half sequence (2023 layout), where a patient has one.
PHASE_CHOICES = (*PHASES, "both", "seq")
SPLITS = (*SPLIT_NAMES, "all")


@dataclass
class PairSet:
    """Aligned arrays: masks[i] is the condition for images[i], both of patients[i]."""

    masks: np.ndarray  # uint8 (N, H, W), raw labels, unkept labels zeroed
    images: np.ndarray  # float32 (N, H, W) in [0, 1]
    patients: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (patient, reason)
    experiment: str = DEFAULT_EXPERIMENT
    kept: tuple[int, ...] = (1, 2, 3)
    phases: list[str] = field(default_factory=list)  # per pair: "ED", "ES" or "seq<k>"
    spacings: np.ndarray | None = None  # float64 (N, 2): (row, col) mm per pixel at this size

    def __len__(self) -> int:
        return len(self.patients)


def load_pairs(
    root: Path,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    split: str = "train",
    view: str = "4CH",
    phase: str = "ED",
    size: tuple[int, int] = (REFERENCE_SIZE, REFERENCE_SIZE),
    image_interp: str = "nearest",
    split_source: str = "auto",
    skip_bad: bool = False,
    progress: bool = False,
) -> PairSet:
    """Load one split of a CAMUS tree as mask/image pairs.

    `split` is "train", "valid", "test" or "all" (the three together); `split_source` is passed
    to `splits.resolve_split`. `phase` is one of PHASE_CHOICES; a patient gives several pairs with
    "both" and "seq" (none with "seq" when its view has no labelled sequence). A bad patient
    (missing, corrupt or inconsistent files, withheld mask) raises, unless `skip_bad`, which logs
    a warning and lists it in `skipped`.
    """
    root = Path(root)
    kept = kept_labels(experiment)
    _check_choice("split", split, SPLITS)
    _check_choice("view", view, VIEWS)
    _check_choice("phase", phase, PHASE_CHOICES)
    _check_choice("image_interp", image_interp, tuple(IMAGE_INTERPOLATIONS))
    size = check_size(size)
    layout = detect_layout(root)
    groups = resolve_split(root, split_source)
    patients = sorted({p for g in groups.values() for p in g}) if split == "all" else groups[split]

    masks, images, loaded, skipped, phases, spacings = [], [], [], [], [], []
    for patient in tqdm(
        patients, desc=f"load {split}", disable=None if progress else True, leave=False
    ):
        if phase == "seq" and not _has_labelled_sequence(root, layout, patient, view):
            continue
        try:
            rec = read_view(root, patient, view, layout=layout, with_sequence=phase == "seq")
            pairs = _view_pairs(rec, phase)
            for _name, frame, mask in pairs:
                masks.append(select_labels(resize_mask(mask, size), kept))
                images.append(image_to_unit(resize_image(frame, size, image_interp)))
            scale = np.array(rec.frame("ED").shape, np.float64) / np.array(size, np.float64)
            spacings += [np.asarray(rec.spacing, np.float64) * scale] * len(pairs)
            loaded += [patient] * len(pairs)
            phases += [name for name, _, _ in pairs]
        except DataError as err:
            if not skip_bad:
                raise
            logger.warning("skipping %s: %s", patient, err)
            skipped.append((patient, str(err)))
    if not loaded and phase == "seq" and patients and not skipped:  # no labelled sequences
        empty = np.zeros((0, *size), np.uint8)
        return PairSet(empty, empty.astype(np.float32), [], [], experiment, kept, [], None)
    if not loaded:
        raise DataError(_empty_message(root, split, split_source, len(patients), skipped))
    logger.info("loaded %d %s pairs from %s (%d skipped)", len(loaded), split, root, len(skipped))
    return PairSet(
        np.stack(masks), np.stack(images), loaded, skipped, experiment, kept, phases,
        np.stack(spacings),
    )  # fmt: skip


def _has_labelled_sequence(root: Path, layout: str, patient: str, view: str) -> bool:
    """True where the 2023 layout holds the view's half sequence with its masks."""
    if layout != "nifti":
        return False  # the 2019 release has no sequence masks
    folder = patient_dir(root, layout, patient)
    return (folder / f"{patient}_{view}_half_sequence_gt.nii.gz").is_file()


def _view_pairs(rec: ViewRecord, phase: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(phase name, frame, mask) of one view for a PHASE_CHOICES value; DataError when an ED/ES
    mask is withheld. "seq" gives the labelled sequence's inner frames ([] without one)."""
    if phase == "seq":
        if rec.sequence is None or rec.sequence_gt is None:
            return []
        inner = range(1, len(rec.sequence) - 1)
        return [(f"seq{k}", rec.sequence[k], rec.sequence_gt[k]) for k in inner]
    out = []
    for name in PHASES if phase == "both" else (phase,):
        mask = rec.mask(name)
        if mask is None:
            raise DataError(
                f"patient {rec.patient} | {rec.view} {name} mask withheld (2019 testing/ "
                "folder). Expected a _gt file. Hint: use a split of training/ patients."
            )
        out.append((name, rec.frame(name), mask))
    return out


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name} {value!r} | unknown. Expected one of {list(valid)}.")


def _empty_message(
    root: Path, split: str, source: str, n_listed: int, skipped: list[tuple[str, str]]
) -> str:
    if n_listed == 0:
        return (
            f"split {split!r} of {root} | empty (split source {source!r}). Expected at least one "
            "patient. Hint: the reference split keeps 2% of 95% of the patients for 'valid', so "
            "small trees need database_split/ files (camus_write.write_split_files) or more "
            "patients."
        )
    first = skipped[0][1] if skipped else "?"
    return (
        f"split {split!r} of {root} | all {n_listed} patients were skipped as bad. Expected at "
        f"least one readable pair. First reason: {first}"
    )
