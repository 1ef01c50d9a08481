"""Apical 2- and 4-chamber heart anatomy for the phantom dataset: shape parameters and contours.

Everything here is in millimetres in the scan plane, with the probe (the fan apex) at the origin,
x to the right and y down (depth). A `Heart` holds the scalar shape of one view at one phase;
ES is derived from ED (`systole`) and the frames between them are parameter blends (`blend`), so
the masks of a sequence follow the same deformation as its ED and ES frames. `contours` turns a
`Heart` into polygons: the CAMUS structures (LV cavity, open myocardium ring, LA) and the ones that
appear only in the image (RV, RA, valves, pericardium, descending aorta).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

VIEWS = ("4CH", "2CH")
_N = 48  # contour samples per LV side


@dataclass(frozen=True)
class Traits:
    """Patient-level facts shared by both views."""

    sex: str  # "M" | "F"
    age: int
    scale: float  # body-size factor on every length
    area_ratio: float  # LV cavity area ES / ED (0.55..0.75: EF roughly 35-60 %)
    systole_s: float  # ED -> ES duration, seconds
    n_frames: int  # frames in the ED -> ES sequence


@dataclass(frozen=True)
class Heart:
    """Scalar shape of one view at one phase (mm, radians). `bumps` is the static wall ripple."""

    apex_x: float  # LV endocardial apex, lateral position
    apex_y: float  # LV endocardial apex depth
    tilt: float  # long-axis angle from vertical; > 0 puts the base to the right
    length: float  # apex -> mitral plane
    width: float  # widest cavity diameter
    sep_frac: float  # share of the width on the septal (left) side
    point: float  # apex sharpness exponent (0.5 round .. 0.75 bullet)
    widest: float  # fraction of the length where the cavity is widest
    annulus: float  # mitral annulus width / widest width
    wall: float  # mid-wall myocardial thickness
    apex_wall: float
    la_len: float
    la_width: float
    la_tilt: float
    rv_width: float  # 0 in 2CH: no right heart
    rv_start: float  # fraction of the LV length where the RV apex sits
    ra_len: float
    ra_width: float
    papillary: float  # papillary muscle length in the image (0: not in the plane)
    bumps: tuple[float, ...] = (0.0,) * 6


def sample_traits(rng: np.random.Generator) -> Traits:
    """Draw the patient-level traits."""
    sex = "M" if rng.random() < 0.6 else "F"
    n_frames = int(rng.integers(10, 21))
    return Traits(
        sex=sex,
        age=int(rng.integers(20, 91)),
        scale=float(rng.uniform(0.9, 1.1) * (1.04 if sex == "M" else 0.96)),
        area_ratio=float(rng.uniform(0.55, 0.75)),
        systole_s=float(rng.uniform(0.28, 0.36)),
        n_frames=n_frames,
    )


def sample_heart(rng: np.random.Generator, view: str, traits: Traits) -> Heart:
    """Draw the end-diastolic shape of one view."""
    s = traits.scale
    four = view == "4CH"
    length = float(rng.normal(86.0, 6.0) * s)
    return Heart(
        apex_x=float(rng.uniform(-2.0, 10.0) if four else rng.uniform(-6.0, 6.0)),
        apex_y=float(rng.uniform(24.0, 40.0) * s),
        tilt=float(rng.uniform(-0.08, 0.2) if four else rng.uniform(-0.15, 0.15)),
        length=length,
        width=float(length * rng.uniform(0.5, 0.62)),
        sep_frac=float(rng.uniform(0.44, 0.52)),
        point=float(rng.uniform(0.5, 0.75)),
        widest=float(rng.uniform(0.55, 0.72)),
        annulus=float(rng.uniform(0.72, 0.88)),
        wall=float(rng.uniform(8.0, 11.0) * s),
        apex_wall=float(rng.uniform(5.0, 7.5) * s),
        la_len=float(rng.uniform(32.0, 46.0) * s),
        la_width=float(rng.uniform(34.0, 46.0) * s),
        la_tilt=float(rng.uniform(-0.2, 0.2)),
        rv_width=float(rng.uniform(24.0, 34.0) * s) if four else 0.0,
        rv_start=float(rng.uniform(0.25, 0.42)),
        ra_len=float(rng.uniform(30.0, 42.0) * s),
        ra_width=float(rng.uniform(30.0, 42.0) * s),
        papillary=float(rng.uniform(8.0, 16.0)) if rng.random() < 0.65 else 0.0,
        bumps=tuple(float(b) for b in rng.normal(0.0, 0.035, 6)),
    )


def systole(ed: Heart, rng: np.random.Generator, traits: Traits) -> Heart:
    """End-systole from end-diastole: the base descends, the cavity narrows, the walls thicken,
    the atria fill. The cavity area shrinks by about `traits.area_ratio`."""
    shorten = float(rng.uniform(0.86, 0.94))
    thicken = float(rng.uniform(1.3, 1.6))
    atria = float(rng.uniform(1.04, 1.12))
    return replace(
        ed,
        apex_y=ed.apex_y + float(rng.uniform(-1.0, 2.0)),
        tilt=ed.tilt + float(rng.uniform(-0.02, 0.02)),
        length=ed.length * shorten,
        width=ed.width * traits.area_ratio / shorten,
        wall=ed.wall * thicken,
        apex_wall=ed.apex_wall * thicken,
        la_len=ed.la_len * atria,
        la_width=ed.la_width * atria,
        rv_width=ed.rv_width * float(rng.uniform(0.75, 0.9)),
        ra_len=ed.ra_len * atria,
        ra_width=ed.ra_width * atria,
    )


def blend(ed: Heart, es: Heart, w: float) -> Heart:
    """The shape a fraction `w` of the way from ED (0) to ES (1); exact at both ends."""
    if w <= 0.0:
        return ed
    if w >= 1.0:
        return es
    values = {}
    for f in fields(Heart):
        a, b = getattr(ed, f.name), getattr(es, f.name)
        if isinstance(a, float):
            values[f.name] = a + (b - a) * w
    return replace(ed, **values)


def _axes(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit long axis (pointing away from the probe) and its right-hand perpendicular."""
    axis = np.array([np.sin(angle), np.cos(angle)])
    return axis, np.array([axis[1], -axis[0]])


def normals(curve: np.ndarray) -> np.ndarray:
    """Unit normals on the left of the travel direction (outward for a curve that runs
    septal base -> apex -> lateral base, i.e. counter-clockwise on screen)."""
    tangent = np.gradient(curve, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)


def _lv_sides(h: Heart) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LV endocardium as (t, septal side, lateral side), each side from apex (t=0) to base."""
    t = np.linspace(0.0, 1.0, _N)
    up = (1.0 - (1.0 - np.minimum(t, h.widest) / h.widest) ** 2) ** h.point
    down = 1.0 - (1.0 - h.annulus) * (np.clip(t - h.widest, 0.0, None) / (1.0 - h.widest)) ** 2
    b = h.bumps
    ripple_s = (
        b[0] * np.sin(np.pi * t) + b[1] * np.sin(2 * np.pi * t) + b[2] * np.sin(3 * np.pi * t)
    )
    ripple_l = (
        b[3] * np.sin(np.pi * t) + b[4] * np.sin(2 * np.pi * t) + b[5] * np.sin(3 * np.pi * t)
    )
    profile = up * down
    axis, perp = _axes(h.tilt)
    apex = np.array([h.apex_x, h.apex_y])
    along = apex + (t * h.length)[:, None] * axis
    septal = along - (h.width * h.sep_frac * profile * (1 + ripple_s))[:, None] * perp
    lateral = along + (h.width * (1 - h.sep_frac) * profile * (1 + ripple_l))[:, None] * perp
    return t, septal, lateral


def _chamber_below(
    left: np.ndarray, right: np.ndarray, length: float, width: float, tilt: float
) -> np.ndarray:
    """An atrium hanging below the valve line left -> right: a polygon from `right` around the
    bottom back to `left`, so the closing edge is the valve line itself."""
    mid = (left + right) / 2
    line = right - left
    axis, perp = _axes(np.arctan2(-line[1], line[0]) + tilt)
    half0, half1 = np.linalg.norm(line) / 2, width / 2
    s = np.linspace(0.0, 1.0, 32)
    grow = half0 + (half1 - half0) * np.sin(np.pi / 2 * np.minimum(s / 0.45, 1.0))
    close = np.sqrt(np.clip(1.0 - (np.clip(s - 0.45, 0.0, None) / 0.55) ** 2, 0.0, 1.0))
    half = grow * close
    centre = mid + (s * length)[:, None] * axis
    fade = ((1.0 - s) ** 2)[:, None]
    right_side = centre + half[:, None] * perp + fade * (right - (mid + half0 * perp))
    left_side = centre - half[:, None] * perp + fade * (left - (mid - half0 * perp))
    return np.concatenate([right_side, left_side[::-1]])


def contours(h: Heart) -> dict[str, np.ndarray]:
    """Polygons (n, 2) in mm. CAMUS structures: "lv", "myo" (ring open at the mitral plane),
    "la". Image-only: "epi", "rv", "ra", "mitral", "tricuspid", "hull" (pericardium path),
    "aorta" (centre x, y and radius), "papillary" (centre x, y, radii and angle)."""
    t, septal, lateral = _lv_sides(h)
    endo = np.concatenate([septal[::-1], lateral[1:]])  # septal base -> apex -> lateral base
    t_curve = np.concatenate([t[::-1], t[1:]])
    taper = np.clip(t_curve / 0.35, 0.0, 1.0)
    thick = h.apex_wall + (h.wall - h.apex_wall) * taper * taper * (3 - 2 * taper)
    epi = endo + normals(endo) * thick[:, None]
    out = {"lv": endo, "myo": np.concatenate([epi, endo[::-1]]), "epi": epi}
    out["la"] = _chamber_below(septal[-1], lateral[-1], h.la_len, h.la_width, h.la_tilt)
    coapt = (septal[-1] + lateral[-1]) / 2 + _axes(h.tilt)[0] * 3.0
    out["mitral"] = np.stack([septal[-1], coapt, lateral[-1]])
    epi_sep, epi_lat = epi[:_N][::-1], epi[_N - 1 :]  # each from apex to base
    la_right = out["la"][: len(out["la"]) // 2]
    hull = [la_right[::-1], epi_lat[::-1]]
    if h.rv_width > 0:
        rv, ra, tricuspid = _right_heart(h, t, epi_sep)
        out.update(rv=rv, ra=ra, tricuspid=tricuspid)
        i0 = int(np.searchsorted(t, h.rv_start))
        hull += [epi_sep[:i0], rv[: len(rv) // 2], ra[len(ra) // 2 :][::-1]]
    else:
        hull += [epi_sep, out["la"][len(out["la"]) // 2 :][::-1]]
    out["hull"] = np.concatenate(hull)
    axis_la, perp_la = _axes(h.tilt + h.la_tilt)
    base_mid = (septal[-1] + lateral[-1]) / 2
    aorta = base_mid + axis_la * (h.la_len + 14.0) + perp_la * 0.45 * h.la_width
    out["aorta"] = np.array([aorta[0], aorta[1], 0.2 * h.la_width])
    pap = lateral[int(0.6 * _N)] - _axes(h.tilt)[1] * 3.0
    out["papillary"] = np.array([pap[0], pap[1], 3.5, h.papillary / 2, h.tilt])
    return out


def _right_heart(
    h: Heart, t: np.ndarray, epi_sep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RV crescent against the septum (apex -> tricuspid plane), RA below it, tricuspid leaflets."""
    keep = (t >= h.rv_start) & (t <= 0.93)
    wall = epi_sep[keep]
    span = (t[keep] - h.rv_start) / (0.93 - h.rv_start)
    bulge = h.rv_width * span**0.5 * (1.0 - 0.3 * span**3)
    free = wall - normals(epi_sep)[keep] * bulge[:, None]
    rv = np.concatenate([free, wall[::-1]])  # free wall apex -> base, septum base -> apex
    ra = _chamber_below(free[-1], wall[-1], h.ra_len, h.ra_width, -0.1)
    coapt = (free[-1] + wall[-1]) / 2 + _axes(h.tilt)[0] * 3.0
    return rv, ra, np.stack([free[-1], coapt, wall[-1]])


def lv_area_length(h: Heart) -> tuple[float, float]:
    """LV cavity area (mm^2, shoelace) and long-axis length (mm, apex to mitral mid-point)."""
    lv = contours(h)["lv"]
    x, y = lv[:, 0], lv[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    base_mid = (lv[0] + lv[-1]) / 2
    return area, float(np.linalg.norm(base_mid - np.array([h.apex_x, h.apex_y])))


def biplane_volume_ml(four: Heart, two: Heart) -> float:
    """LV volume by the biplane area-length method, V = 8 A4 A2 / (3 pi L), in ml."""
    a4, l4 = lv_area_length(four)
    a2, l2 = lv_area_length(two)
    return 8.0 * a4 * a2 / (3.0 * np.pi * max(l4, l2)) / 1000.0
