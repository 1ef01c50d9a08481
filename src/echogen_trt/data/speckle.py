"""Convolution speckle model: an echogenicity map becomes a B-mode sector image
(docs/reference.md section 4).

The map (painted in mm on a coarse Cartesian grid, `PaintGrid`) is sampled on a polar grid of the
sector, multiplied as sqrt(echogenicity) with complex Gaussian scatterers, blurred by an
axial/lateral point-spread function, detected (the envelope is Rayleigh), attenuated with depth
and partly given back by the time-gain compensation, log-compressed and scan-converted to the
native Cartesian frame with `cv2.remap`; pixels outside the fan are zero. A `Scanner` holds what
stays fixed for one view: the grids, the remap tables and two scatterer fields; a frame at phase
`s` (0 = ED, 1 = ES) blends the two, so speckle evolves smoothly along a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

QUALITIES = ("Good", "Medium", "Poor")
_PAINT_MM = 0.5  # painting grid pitch
_POLAR_MM = 0.32  # radial sample pitch of the simulation


@dataclass(frozen=True)
class Sector:
    """The fan and the native pixel grid: apex at the top-centre pixel, spacing (row, col) mm."""

    depth: float
    half_angle: float
    rows: int
    cols: int
    spacing: tuple[float, float]

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """mm (x, y) -> native pixel (col, row)."""
        col = points[..., 0] / self.spacing[1] + (self.cols - 1) / 2
        return np.stack([col, points[..., 1] / self.spacing[0]], axis=-1)

    def polar_of_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """Radius (mm) and angle from the vertical (rad) of every native pixel."""
        x = (np.arange(self.cols, dtype=np.float32) - (self.cols - 1) / 2) * self.spacing[1]
        y = np.arange(self.rows, dtype=np.float32) * self.spacing[0]
        xx, yy = np.meshgrid(x, y)
        return np.hypot(xx, yy), np.arctan2(xx, yy)

    def fan(self) -> np.ndarray:
        """Boolean (H, W): inside the ultrasound sector."""
        r, theta = self.polar_of_pixels()
        return (r <= self.depth) & (np.abs(theta) <= self.half_angle)


def sample_sector(rng: np.random.Generator, min_depth: float) -> Sector:
    """Per-view fan and frame size: half-angle 35-40 deg, native rows 550-1000, column spacing
    about 0.3 mm (the row spacing follows from the depth, as in the anisotropic CAMUS frames)."""
    depth = float(min_depth + rng.uniform(2.0, 18.0))
    half_angle = float(np.deg2rad(rng.uniform(35.0, 40.0)))
    rows = int(rng.integers(550, 1001))
    col_mm = float(rng.uniform(0.3, 0.38))
    half_cols = round(depth * np.sin(half_angle) / col_mm)
    row_mm = depth / (rows - 1)
    return Sector(depth, half_angle, rows, 2 * half_cols + 1, (row_mm, col_mm))


@dataclass(frozen=True)
class PaintGrid:
    """Coarse Cartesian grid (pitch `_PAINT_MM`) covering the sector, for painting echogenicity."""

    x0: float
    rows: int
    cols: int
    pitch: float = _PAINT_MM

    @classmethod
    def for_sector(cls, sector: Sector) -> PaintGrid:
        half = sector.depth * np.sin(sector.half_angle) + 2.0
        return cls(-half, int(np.ceil((sector.depth + 2.0) / _PAINT_MM)), int(2 * half / _PAINT_MM))

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """mm (x, y) -> paint-grid pixel (col, row)."""
        return np.stack([(points[..., 0] - self.x0), points[..., 1]], axis=-1) / self.pitch

    def length(self, mm: float) -> float:
        return mm / self.pitch


@dataclass(frozen=True)
class Acoustics:
    """Per-view scanner settings; `quality` drives noise, clutter and blur."""

    quality: str
    dynamic_range: float  # dB shown between black and white
    myo_grey: float  # where the mean myocardium lands on the grey scale (0..1)
    atten_db: float  # round-trip attenuation over the full depth
    tgc: float  # share of that attenuation the time-gain compensation gives back
    noise_db: float  # displayed noise floor near the probe, re. myocardium
    sidelobe: float  # share of the laterally blurred echo leaking into dark regions
    clutter: float  # near-field reverberation level
    psf: tuple[float, float]  # Gaussian PSF sigma: (axial samples, lateral lines)
    reject: float  # display reject level (fraction of the grey range)
    gamma: float  # grey-map exponent
    shadow: tuple[float, float, float]  # rib shadow: centre (fraction of the fan), width, dB


def sample_acoustics(rng: np.random.Generator, quality: str) -> Acoustics:
    """Draw the settings of one acquisition of the given image quality."""
    q = QUALITIES.index(quality)
    return Acoustics(
        quality=quality,
        dynamic_range=float(rng.uniform(40.0, 60.0)),
        myo_grey=float(rng.uniform(0.5, 0.65)),
        atten_db=float(rng.uniform(28.0, 42.0)),
        tgc=float(rng.uniform(0.7, 0.88)),
        noise_db=float((-52.0, -46.0, -40.0)[q] + rng.uniform(-3.0, 3.0)),
        sidelobe=float((0.01, 0.025, 0.05)[q] * rng.uniform(0.7, 1.4)),
        clutter=float((0.004, 0.02, 0.06)[q] * rng.uniform(0.6, 1.6)),
        psf=(
            float(rng.uniform(0.8, 1.2) * (1.0, 1.1, 1.25)[q]),
            float(rng.uniform(1.0, 1.4) * (1.0, 1.15, 1.3)[q]),
        ),
        reject=float(rng.uniform(0.04, 0.12)),
        gamma=float(rng.uniform(1.0, 1.3)),
        shadow=(
            float(rng.choice([0.1, 0.9]) + rng.uniform(-0.08, 0.08)),
            float(rng.uniform(0.04, 0.1)),
            float(rng.uniform(6.0, 16.0) if rng.random() < (0.1, 0.3, 0.6)[q] else 0.0),
        ),
    )


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length `sigma` pixels."""
    field = cv2.GaussianBlur(rng.standard_normal(shape, dtype=np.float32), (0, 0), sigma)
    return field / max(float(field.std()), 1e-6)


class Scanner:
    """The fixed machinery of one view: polar grid, remap tables and scatterer fields."""

    def __init__(
        self, sector: Sector, grid: PaintGrid, acoustics: Acoustics, rng: np.random.Generator
    ):
        self.sector, self.acoustics = sector, acoustics
        n_r = round(sector.depth / _POLAR_MM)
        n_t = round(2 * sector.half_angle * sector.depth * 0.55 / 0.85)
        r = np.linspace(0.0, sector.depth, n_r, dtype=np.float32)
        theta = np.linspace(-sector.half_angle, sector.half_angle, n_t, dtype=np.float32)
        rr, tt = np.meshgrid(r, theta, indexing="ij")
        xy = grid.to_pixels(np.stack([rr * np.sin(tt), rr * np.cos(tt)], axis=-1))
        self._paint_map = (xy[..., 0].astype(np.float32), xy[..., 1].astype(np.float32))
        pr, pt = sector.polar_of_pixels()
        self._native_map = (
            ((pt + sector.half_angle) / (2 * sector.half_angle) * (n_t - 1)).astype(np.float32),
            (pr / sector.depth * (n_r - 1)).astype(np.float32),
        )
        self._fan = (pr <= sector.depth) & (np.abs(pt) <= sector.half_angle)
        shape = (n_r, n_t, 2)
        self._scatter = [rng.standard_normal(shape, dtype=np.float32) for _ in range(2)]
        self._noise = [rng.standard_normal(shape, dtype=np.float32) for _ in range(2)]
        self._clutter = np.exp(0.6 * smooth_field(rng, (n_r, n_t), 6.0))
        self._depth_gain = self._depth_profile(r, theta)
        self._depth_gain[..., 0] *= self._beam_gain(rng, r, n_t)
        self._near = np.exp(-r / 35.0)[:, None].astype(np.float32)

    def _depth_profile(self, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Per-sample signal gain (attenuation, TGC, lateral roll-off) and noise level."""
        a = self.acoustics
        frac = r / self.sector.depth
        atten = 10 ** (-a.atten_db * frac / 20)
        tgc = 10 ** (a.atten_db * a.tgc * frac / 20)
        edge = np.clip(1.0 - 0.5 * (np.abs(theta) / self.sector.half_angle) ** 6, 0.4, 1.0)
        noise = 1.0 + 1.5 * frac  # display-referred noise grows with depth (TGC gain)
        return np.stack(
            [np.outer(atten * tgc, edge), np.outer(noise, np.ones_like(theta))], axis=-1
        ).astype(np.float32)

    def _beam_gain(self, rng: np.random.Generator, r: np.ndarray, n_t: int) -> np.ndarray:
        """Slow beam-to-beam gain ripple and an optional rib shadow below the chest wall."""
        ripple = cv2.GaussianBlur(rng.standard_normal((1, n_t)).astype(np.float32), (0, 0), 6.0)
        gain = np.exp(0.15 * ripple / max(float(ripple.std()), 1e-6))
        centre, width, db = self.acoustics.shadow
        frac = np.linspace(0.0, 1.0, n_t, dtype=np.float32)
        band = np.exp(-0.5 * ((frac - centre) / width) ** 4)[None, :]
        below = np.clip((r - 15.0) / 10.0, 0.0, 1.0)[:, None]
        return (gain * 10 ** (-db / 20 * band * below)).astype(np.float32)

    def polar(self, echo: np.ndarray) -> np.ndarray:
        """Sample a painted echogenicity map on the polar grid (rows = depth, cols = beams)."""
        return cv2.remap(echo, *self._paint_map, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def render(self, echo: np.ndarray, phase: float) -> np.ndarray:
        """One uint8 (H, W) B-mode frame from a painted echogenicity map."""
        a = self.acoustics
        e = self.polar(echo)
        e = e + a.sidelobe * cv2.GaussianBlur(e, (0, 0), sigmaX=8.0, sigmaY=2.0)
        e = e + a.clutter * self._clutter * self._near
        c, s = np.float32(np.cos(np.pi / 2 * phase)), np.float32(np.sin(np.pi / 2 * phase))
        field = (c * self._scatter[0] + s * self._scatter[1]) * np.sqrt(e / 2)[..., None]
        sig_r, sig_t = a.psf
        field = cv2.GaussianBlur(field, (0, 0), sigmaX=sig_t, sigmaY=sig_r)
        field *= np.float32(np.sqrt(4 * np.pi * sig_r * sig_t))  # keep the mean power
        field *= self._depth_gain[..., :1]
        noise = c * self._noise[0] + s * self._noise[1]
        noise *= self._depth_gain[..., 1:] * np.float32(10 ** (a.noise_db / 20) / 2**0.5)
        env = np.hypot(*np.moveaxis(field + noise, -1, 0))
        gain_db = a.dynamic_range * (1.0 - a.myo_grey) - 2.5  # mean Rayleigh level is -2.5 dB
        grey = (20 * np.log10(env + 1e-6) - gain_db + a.dynamic_range) / a.dynamic_range
        grey = np.clip((grey - a.reject) / (1 - a.reject), 0.0, 1.0) ** a.gamma * 255.0
        out = cv2.remap(
            grey.astype(np.float32),
            *self._native_map,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[~self._fan] = 0
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    @property
    def fan(self) -> np.ndarray:
        return self._fan
