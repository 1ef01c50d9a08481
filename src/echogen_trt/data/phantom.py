"""Synthetic apical echo patients ("phantoms") in CAMUS form, for tests, the demo and benchmarks.

`synth_patient(seed, index)` draws one patient: traits shared by both views (sex, age, body size,
ejection fraction, sequence length), then per view an anatomy (`anatomy`), a fan and scanner
settings (`speckle`). Each frame is painted as an echogenicity map - blood very dark, myocardium
bright, pericardium and valves brighter, other tissue textured, right heart and aorta included -
and turned into a B-mode image by the speckle model; the mask of the same shape carries only the
CAMUS labels 0..3. Everything is drawn from `numpy.random.default_rng([seed, index, view])`, so a
patient view is the same whichever other views or patients are generated alongside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from echogen_trt.artifacts.labels import LABEL_NAMES
from echogen_trt.data import anatomy as an
from echogen_trt.data import speckle as sp
from echogen_trt.data.records import ViewRecord
from echogen_trt.errors import ConfigError

BLOOD = 10**-4.4  # echogenicity re. myocardium (about -44 dB)
_QUALITY_P = (0.35, 0.45, 0.2)  # Good / Medium / Poor, roughly as in CAMUS


@dataclass
class _Look:
    """Per-view tissue brightness and the fixed texture fields on the paint grid."""

    grid: sp.PaintGrid
    myo: float
    tissue: np.ndarray  # background echogenicity (already textured)
    grain: np.ndarray  # multiplicative fine texture for everything
    peri: float  # pericardium echogenicity


@dataclass
class _ViewPlan:
    view: str
    quality: str
    ed: an.Heart
    es: an.Heart
    sector: sp.Sector
    scanner: sp.Scanner
    look: _Look


def patient_id(index: int) -> str:
    """CAMUS patient folder name, e.g. 1 -> "patient0001"."""
    return f"patient{index:04d}"


def synth_patient(
    seed: int,
    index: int,
    views: Sequence[str] = ("4CH", "2CH"),
    with_sequence: bool = True,
) -> dict[str, ViewRecord]:
    """One synthetic patient: a `ViewRecord` per requested view, with ED/ES frames and masks,
    Info fields and (unless `with_sequence` is False) the ED -> ES sequence with its masks."""
    _check_args(seed, index, views)
    traits = an.sample_traits(np.random.default_rng([seed, index]))
    hearts = {v: _hearts(seed, index, v, traits) for v in an.VIEWS}
    edv = an.biplane_volume_ml(hearts["4CH"][0], hearts["2CH"][0])
    esv = an.biplane_volume_ml(hearts["4CH"][1], hearts["2CH"][1])
    out = {}
    for view in views:
        ed, es, rng = hearts[view]
        plan = _plan(view, traits, rng, ed, es)
        rec = _render_view(plan, patient_id(index), traits, with_sequence)
        rec.info = _info(traits, plan.quality, edv, esv)
        out[view] = rec
    return out


def _check_args(seed: int, index: int, views: Sequence[str]) -> None:
    if int(seed) < 0 or int(index) < 0:
        raise ConfigError(
            f"phantom seed/index | negative value. Expected integers >= 0, got seed={seed}, "
            f"index={index}."
        )
    bad = [v for v in views if v not in an.VIEWS]
    if bad or not views:
        raise ConfigError(
            f"phantom views | unknown or empty {list(views)}. Expected a subset of {an.VIEWS}."
        )


def _hearts(
    seed: int, index: int, view: str, traits: an.Traits
) -> tuple[an.Heart, an.Heart, np.random.Generator]:
    """ED and ES shapes of a view, plus that view's generator (positioned after them)."""
    rng = np.random.default_rng([seed, index, 1 + an.VIEWS.index(view)])
    ed = an.sample_heart(rng, view, traits)
    es = an.systole(ed, rng, traits)
    return ed, es, rng


def _plan(
    view: str, traits: an.Traits, rng: np.random.Generator, ed: an.Heart, es: an.Heart
) -> _ViewPlan:
    """Fan, scanner settings and textures for one view."""
    quality = str(rng.choice(sp.QUALITIES, p=_QUALITY_P))
    deepest = max(
        float(np.max(c[k][:, 1])) for c in (an.contours(ed), an.contours(es)) for k in ("la", "lv")
    )
    sector = sp.sample_sector(rng, deepest)
    acoustics = sp.sample_acoustics(rng, quality)
    grid = sp.PaintGrid.for_sector(sector)
    scanner = sp.Scanner(sector, grid, acoustics, rng)
    shape = (grid.rows, grid.cols)
    tissue = float(rng.uniform(0.07, 0.18)) * np.exp(1.0 * sp.smooth_field(rng, shape, 10.0))
    tissue = _chest_wall(tissue, grid, rng, ed.apex_y - ed.apex_wall - 4.0)
    grain = np.exp(
        0.3 * sp.smooth_field(rng, shape, 2.0) + 0.35 * sp.smooth_field(rng, shape, 16.0)
    )
    look = _Look(grid, 1.0, tissue.astype(np.float32), grain, float(rng.uniform(3.0, 6.0)))
    return _ViewPlan(view, quality, ed, es, sector, scanner, look)


def _chest_wall(
    tissue: np.ndarray, grid: sp.PaintGrid, rng: np.random.Generator, depth: float
) -> np.ndarray:
    """Bright, laterally streaked layers between the probe and the heart."""
    rows, cols = tissue.shape
    y = (np.arange(rows) * grid.pitch)[:, None]
    x = (np.arange(cols) * grid.pitch + grid.x0)[None, :]
    r = np.hypot(x, y)
    streaks = cv2.GaussianBlur(
        rng.standard_normal(tissue.shape).astype(np.float32), (0, 0), 14, sigmaY=1.5
    )
    layers = 0.5 * np.exp(2.0 * streaks / max(float(streaks.std()), 1e-6) * 0.5)
    weight = np.clip((depth - r) / 4.0, 0.0, 1.0)
    return tissue * (1 - weight) + layers * weight


def _render_view(
    plan: _ViewPlan, patient: str, traits: an.Traits, with_sequence: bool
) -> ViewRecord:
    """ED and ES frames and masks, and the sequence between them when asked for."""
    n = traits.n_frames
    phases = np.linspace(0.0, 1.0, n) if with_sequence else np.array([0.0, 1.0])
    frames, masks = [], []
    for s in phases:
        heart = an.blend(plan.ed, plan.es, 0.5 - 0.5 * float(np.cos(np.pi * s)))
        shapes = an.contours(heart)
        frames.append(plan.scanner.render(_paint(shapes, plan.look), float(s)))
        masks.append(draw_labels(shapes, plan.sector, plan.scanner.fan))
    rec = ViewRecord(
        patient=patient,
        view=plan.view,
        ed=frames[0],
        es=frames[-1],
        ed_gt=masks[0],
        es_gt=masks[-1],
        spacing=plan.sector.spacing,
    )
    if with_sequence:
        rec.sequence, rec.sequence_gt = np.stack(frames), np.stack(masks)
    return rec


def draw_labels(shapes: dict[str, np.ndarray], sector: sp.Sector, fan: np.ndarray) -> np.ndarray:
    """CAMUS labels of anatomy contours (`anatomy.contours`, keyed by `LABEL_NAMES`) on the
    sector's grid, drawn from the highest label down (LA 3, myocardium 2, LV cavity 1) so the
    cavity lies on top; zero outside the fan. Phantom trees and serve's sliders both draw so."""
    mask = np.zeros((sector.rows, sector.cols), np.uint8)
    for label in sorted(set(LABEL_NAMES) - {0}, reverse=True):
        points = _fixed(sector.to_pixels(shapes[LABEL_NAMES[label]]))
        cv2.fillPoly(mask, [points], label, cv2.LINE_8, 4)
    mask[~fan] = 0
    return mask


def _fixed(px: np.ndarray) -> np.ndarray:
    """Pixel coordinates as int32 with 4 fractional bits, for cv2 drawing with shift=4."""
    return np.round(px * 16).astype(np.int32)


def _paint(shapes: dict[str, np.ndarray], look: _Look) -> np.ndarray:
    """Echogenicity map (re. myocardium = 1) of one frame on the paint grid."""
    g = look.grid
    e = look.tissue.copy()
    _line(e, g, shapes["hull"], look.peri * 0.3, 12.0)
    _line(e, g, shapes["hull"], look.peri, 4.0)
    ao = shapes["aorta"]
    _disc(e, g, ao[:2], ao[2] + 2.5, 1.2)
    _disc(e, g, ao[:2], ao[2], BLOOD)
    for name, wall in (("ra", 2.5), ("rv", 4.0), ("la", 2.5)):
        if name in shapes:
            contour = shapes[name][: len(shapes[name]) // 2] if name == "rv" else shapes[name]
            _wall(e, g, contour, _outward(contour, shapes[name], wall), 0.7)
            _fill(e, g, shapes[name], BLOOD)
    _wall(e, g, shapes["lv"], shapes["epi"], look.myo)
    _fill(e, g, shapes["lv"], BLOOD)
    px, py, rad_a, rad_b, tilt = shapes["papillary"]
    if rad_b > 0:
        centre = _fixed(g.to_pixels(np.array([px, py])))
        axes = (int(g.length(rad_a) * 16), int(g.length(rad_b) * 16))
        angle = -float(np.degrees(tilt))
        cv2.ellipse(
            e, (int(centre[0]), int(centre[1])), axes, angle, 0, 360, 0.5, -1, cv2.LINE_8, 4
        )
    for valve in ("mitral", "tricuspid"):
        if valve in shapes:
            _line(e, g, shapes[valve], 1.6, 1.5)
            for end in (shapes[valve][0], shapes[valve][-1]):
                _disc(e, g, end, 2.5, 1.8)
    e *= look.grain
    return cv2.GaussianBlur(e, (0, 0), 0.8)


def _fill(e: np.ndarray, g: sp.PaintGrid, poly: np.ndarray, value: float) -> None:
    cv2.fillPoly(e, [_fixed(g.to_pixels(poly))], float(value), cv2.LINE_8, 4)


def _line(e: np.ndarray, g: sp.PaintGrid, pts: np.ndarray, value: float, mm: float) -> None:
    width = max(1, round(g.length(mm)))
    cv2.polylines(e, [_fixed(g.to_pixels(pts))], False, float(value), width, cv2.LINE_8, 4)


def _disc(
    e: np.ndarray, g: sp.PaintGrid, centre: np.ndarray, radius_mm: float, value: float
) -> None:
    c = _fixed(g.to_pixels(centre))
    radius = round(g.length(radius_mm) * 16)
    cv2.circle(e, (int(c[0]), int(c[1])), radius, float(value), -1, cv2.LINE_8, 4)


def _outward(curve: np.ndarray, polygon: np.ndarray, mm: float) -> np.ndarray:
    """`curve` moved `mm` away from the centroid of `polygon`, along its normals."""
    normal = an.normals(curve)
    centroid = polygon.mean(axis=0)
    if np.mean(np.sum((curve - centroid) * normal, axis=1)) < 0:
        normal = -normal
    return curve + normal * mm


def _wall(
    e: np.ndarray, g: sp.PaintGrid, inner: np.ndarray, outer: np.ndarray, level: float
) -> None:
    """A wall between two matching curves, drawn as quads whose brightness follows the angle
    of incidence: walls facing the probe reflect strongly, walls along the beams stay dim."""
    seg = np.diff(inner, axis=0)
    mid = (inner[1:] + inner[:-1]) / 2
    normal = np.stack([seg[:, 1], -seg[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    beam = mid / np.maximum(np.linalg.norm(mid, axis=1, keepdims=True), 1e-9)
    facing = np.abs(np.sum(normal * beam, axis=1))
    values = level * (0.45 + 0.75 * facing**1.5)
    a, b = _fixed(g.to_pixels(inner)), _fixed(g.to_pixels(outer))
    quads = np.stack([a[:-1], a[1:], b[1:], b[:-1]], axis=1)
    for quad, value in zip(quads, values.tolist(), strict=True):
        cv2.fillPoly(e, [quad], value, cv2.LINE_8, 4)


def _info(traits: an.Traits, quality: str, edv: float, esv: float) -> dict[str, str]:
    """Info_<view>.cfg fields of both releases, derived from the anatomy where it is cheap."""
    ef = 100.0 * (edv - esv) / edv
    n = traits.n_frames
    return {
        "ED": "1",
        "ES": str(n),
        "NbFrame": str(n),
        "Sex": traits.sex,
        "Age": str(traits.age),
        "ImageQuality": quality,
        "LVedv": f"{edv:.1f}",
        "LVesv": f"{esv:.1f}",
        "LVef": f"{ef:.1f}",
        "EF": f"{ef:.1f}",
        "FrameRate": str(round((n - 1) / traits.systole_s)),
    }
