"""What varies from crystal to crystal and shot to shot in the simulator, beyond the defaults.

Each hit's crystal draws its own spot width, domain size and mosaic spread (log-uniform between
the run's bounds when a range is given), so a trial cannot rely on one constant; spots may be
elongated along the radial direction (shapes other than round Gaussians); a fraction of shots
carries ice rings, and misses may carry weak diffuse scattering instead of being blank. Every
drawn quantity is part of the shot's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.panel_image import image_s_magnitude

ICE_RINGS_D = (3.90, 3.67, 3.44, 2.67, 2.25)  # hexagonal ice, Angstrom
ICE_RELATIVE = (1.0, 0.6, 0.5, 0.3, 0.3)


@dataclass(frozen=True)
class CrystalDraw:
    """The per-crystal quantities of one shot (its ground truth)."""

    spot_sigma_px: float
    domain_size_a: float
    mosaicity_deg: float


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """`low` when no range is given (high <= low), else log-uniform in [low, high]."""
    if high <= low:
        return float(low)
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_crystal(params, rng: np.random.Generator) -> CrystalDraw:
    """Spot width, domain size and mosaicity of one crystal within the run's bounds."""
    return CrystalDraw(
        log_uniform(rng, params.spot_sigma_px, params.spot_sigma_max_px),
        log_uniform(rng, params.domain_size_min_a or params.domain_size_a, params.domain_size_a),
        log_uniform(rng, params.mosaicity_deg, params.mosaicity_max_deg),
    )


def spot_window(params) -> int:
    """Half-width (pixels) of the box spots are drawn in: 3.3 sigma of the widest spot (99.6 %
    of its photons; 3 px for the default 0.9 px spots, as before the variants)."""
    widest = max(params.spot_sigma_px, params.spot_sigma_max_px) * params.spot_elongation
    return max(3, int(np.ceil(3.3 * widest)))


def spot_profiles(dr, dc, col, row, sigma: float, elongation: float, beam) -> np.ndarray:
    """Normalised Gaussian spot profiles on window pixels offset (dr, dc) (n, w).

    `elongation` stretches each spot along the radial direction from the beam centre `beam`
    (col, row) by that factor (1: round spots).
    """
    y = dr - row[:, None]
    x = dc - col[:, None]
    if elongation == 1.0:
        q = (x * x + y * y) / sigma**2
    else:
        radial = np.stack([col - beam[0], row - beam[1]])
        radial /= np.maximum(np.linalg.norm(radial, axis=0), 1e-9)
        along = x * radial[0][:, None] + y * radial[1][:, None]
        across = -x * radial[1][:, None] + y * radial[0][:, None]
        q = (along / elongation) ** 2 / sigma**2 + across**2 / sigma**2
    profile = np.exp(-0.5 * q)
    return profile / profile.sum(axis=1, keepdims=True)


def ring_map(geometry, wavelength: float, rings_d, relative, width: float = 0.004) -> np.ndarray:
    """Sum of Gaussian powder rings at spacings `rings_d` (peak 1 x relative), per pixel."""
    s = image_s_magnitude(geometry, wavelength)
    total = np.zeros(geometry.shape, dtype=np.float32)
    for d, rel in zip(rings_d, relative):
        total += rel * np.exp(-0.5 * ((s - 1.0 / d) / width) ** 2)
    return total


@dataclass(frozen=True)
class ExtraBackground:
    """Sparse expected photons added on some shots: ice rings, a miss's weak diffuse halo."""

    ice_pixels: np.ndarray  # flat indices where the ice rings are not negligible
    ice_mean: np.ndarray  # their expected photons
    diffuse_mean: np.ndarray | None  # full-frame expected photons of a miss's halo

    @classmethod
    def build(cls, geometry, params) -> ExtraBackground:
        ice = np.zeros(0, dtype=np.float32)
        if params.ice_fraction > 0:
            ice = ring_map(geometry, params.wavelength, ICE_RINGS_D, ICE_RELATIVE).ravel()
            ice *= params.ice_ring_photons
        pixels = np.flatnonzero(ice > 1e-3)
        diffuse = None
        if params.miss_diffuse_photons > 0:
            s = image_s_magnitude(geometry, params.wavelength)
            diffuse = (params.miss_diffuse_photons * np.exp(-0.5 * (s / 0.15) ** 2)).ravel()
        return cls(pixels, ice[pixels].astype(np.float64), diffuse)

    def add(self, image: np.ndarray, ice: bool, miss: bool, rng: np.random.Generator) -> None:
        """Add the Poisson photons of the rings (if `ice`) and of the halo (if a `miss`)."""
        flat = image.reshape(-1)
        if ice and len(self.ice_pixels):
            flat[self.ice_pixels] += rng.poisson(self.ice_mean)
        if miss and self.diffuse_mean is not None:
            flat += rng.poisson(self.diffuse_mean)
