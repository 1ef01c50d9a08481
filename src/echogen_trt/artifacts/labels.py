"""Label facts: the CAMUS labels, the paper's five conditioning experiments (which labels each
keeps), label selection and the one colour palette.

Labels: 0 background, 1 LV cavity, 2 LV myocardium, 3 left atrium. Labels not kept are set to 0;
kept labels keep their raw value (the reference feeds raw label values as floats).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from echogen_trt.errors import ConfigError

LABEL_NAMES: dict[int, str] = {0: "background", 1: "lv", 2: "myo", 3: "la"}  # keys in files
LABEL_TITLES: dict[int, str] = {0: "background", 1: "LV", 2: "myocardium", 3: "LA"}  # for people
MAX_LABEL = max(LABEL_NAMES)

EXPERIMENTS: dict[str, tuple[int, ...]] = {
    "ventricle": (1,),
    "atrium": (3,),
    "ventricle_myocard": (1, 2),
    "ventricle_atrium": (1, 3),
    "ventricle_myocard_atrium": (1, 2, 3),
}

DEFAULT_EXPERIMENT = "ventricle_myocard_atrium"

# BGR colours: background black, LV red, myocardium green, LA blue (as in most CAMUS figures).
# The one palette: contact sheets, demo reports and `generate --overlay` all use it.
PALETTE = np.array([[0, 0, 0], [60, 60, 230], [60, 200, 60], [230, 120, 40]], np.uint8)


def kept_labels(experiment: str) -> tuple[int, ...]:
    """Labels kept by a named experiment; raises ConfigError listing the valid names."""
    try:
        return EXPERIMENTS[experiment]
    except KeyError:
        valid = ", ".join(EXPERIMENTS)
        raise ConfigError(
            f"experiment {experiment!r} | unknown. Expected one of: {valid}."
        ) from None


def select_labels(mask: np.ndarray, kept: Iterable[int]) -> np.ndarray:
    """Zero every label not in `kept`; kept labels keep their value. Dtype is preserved."""
    keep = np.isin(mask, np.asarray(tuple(kept), dtype=mask.dtype))
    return np.where(keep, mask, np.zeros((), dtype=mask.dtype))
