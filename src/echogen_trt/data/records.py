"""In-memory form of one CAMUS patient view, shared by the readers, the writers and the phantoms.

Arrays are in display order: (H, W) with the fan apex at the top, uint8. Masks hold raw labels
0..3. This is the single contract between `camus` (read), `camus_write` (write) and `phantom`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ViewRecord:
    """One view (2CH or 4CH) of one patient."""

    patient: str  # "patient0001"
    view: str  # "2CH" | "4CH"
    ed: np.ndarray  # uint8 (H, W)
    es: np.ndarray  # uint8 (H, W)
    ed_gt: np.ndarray | None  # uint8 (H, W) labels 0..3; None where withheld (2019 testing/)
    es_gt: np.ndarray | None
    spacing: tuple[float, float]  # (row, col) pixel spacing in mm, from the file header
    info: dict[str, str] = field(default_factory=dict)  # Info_<view>.cfg, keys as in the file
    sequence: np.ndarray | None = None  # uint8 (T, H, W), ED..ES (2019 full, 2023 half sequence)
    sequence_gt: np.ndarray | None = None  # uint8 (T, H, W), only the 2023 half_sequence_gt

    def frame(self, phase: str) -> np.ndarray:
        """The ED or ES image."""
        return self.ed if phase == "ED" else self.es

    def mask(self, phase: str) -> np.ndarray | None:
        """The ED or ES mask, or None where it is withheld."""
        return self.ed_gt if phase == "ED" else self.es_gt
