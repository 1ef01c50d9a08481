"""The page's label names and colours, served as GET /v1/labels so the page spells neither.

The colours are from Okabe & Ito's colour-blind-safe set: LV blue, myocardium yellow, LA
vermillion. The CAMUS-figure red/green/blue (artifacts.labels.PALETTE) puts LV red next to
myocardium green at 1.49:1 luminance contrast under deuteranopia; these stay apart under
deuteranopia and protanopia (tests/serve/test_palette.py simulates both, Machado et al. 2009).
"""

from __future__ import annotations

from typing import Any

from echogen_trt.artifacts.labels import LABEL_NAMES

# label -> (short name for a brush, what it is, RGB)
PAGE_LABELS: dict[int, tuple[str, str, tuple[int, int, int]]] = {
    0: ("Eraser", "background", (0, 0, 0)),
    1: ("LV", "LV cavity", (0, 114, 178)),
    2: ("MYO", "myocardium", (240, 228, 66)),
    3: ("LA", "left atrium", (213, 94, 0)),
}


def labels_info(kept: tuple[int, ...], experiment: str) -> dict[str, Any]:
    """The label list the page builds its brushes, legend and colours from."""
    return {
        "experiment": experiment,
        "labels": [
            {
                "value": value,
                "key": LABEL_NAMES[value],
                "brush": brush,
                "title": title,
                "colour": "#{:02x}{:02x}{:02x}".format(*rgb),
                "kept": value == 0 or value in kept,
            }
            for value, (brush, title, rgb) in PAGE_LABELS.items()
        ],
    }
