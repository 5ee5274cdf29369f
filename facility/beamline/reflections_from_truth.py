"""Integrated reflections synthesised straight from the truth, for merging tests and benchmarks.

The image simulator renders pixels (seconds per hundred images); merging at 10^4-10^5 images
needs only what integration would hand it. Each synthetic still records a random sample of the
full sphere of a :class:`~facility.beamline.crystal_model.Crystal` with, per crystal, a scale
(size), a B factor, a resolution limit, a domain size and a mosaicity (both varying
``spread``-fold), and per reflection a Gaussian partiality in a uniform excitation error. The
*reported* partiality is the trial's estimate with its domain size and mosaicity
``trial_width_factor`` off; noise is counting statistics plus a background and a fraction
``model_error`` of the signal; ``bad_fraction`` of the crystals are non-isomorphous.

Pump-probe: when the crystal has a light state, ``laser_fraction`` of the shots are laser-on
shots of it (the same light state at every pump-probe delay, drawn from ``delays_ns``); the
per-shot tags ``laser_on`` (1/0) and ``delay_ns`` (NaN when dark) come with the observations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facility.beamline.crystal_model import Crystal, laser_shots
from kernels.merging.algorithm import Observations


@dataclass(frozen=True)
class SyntheticParams:
    """Crystal variety, the trial's error in partiality settings, and noise."""

    images: int = 2000
    reflections_per_image: int = 150
    photons: float = 60.0  # expected photons of a full reflection of mean intensity
    background: float = 15.0  # photons of background under a spot
    model_error: float = 0.05
    scale_spread: float = 0.4  # lognormal sigma of the crystal scale
    spread: float = 3.0  # largest / smallest domain size, and mosaicity
    domain_size_a: float = 5000.0  # geometric mean of the crystals'
    mosaicity_deg: float = 0.05
    b_range: tuple[float, float] = (-5.0, 25.0)  # per-crystal B factor, A^2
    limit_range: tuple[float, float] = (1.0, 1.35)  # per-crystal resolution limit / data d_min
    trial_width_factor: float = 2.0  # the trial's domain size / this, mosaicity x this
    wavelength: float = 1.3
    bandwidth: float = 2.5e-3
    bad_fraction: float = 0.03
    laser_fraction: float = 0.5  # of the shots, when the crystal has a light state
    delays_ns: tuple[float, ...] = (100.0, 1000.0)
    seed: int = 0


def width2(s, domain_size_a, mosaicity_deg, p: SyntheticParams):
    """Squared Gaussian width of the excitation-error profile (as the simulator's)."""
    return (
        (1.0 / domain_size_a) ** 2
        + (np.radians(mosaicity_deg) * s) ** 2
        + (p.bandwidth * p.wavelength * s**2 / 2.0) ** 2
    )


def synthesise(crystal: Crystal, p: SyntheticParams, chunk: int = 5000) -> Observations:
    """Observations of `p.images` synthetic stills of `crystal` (see module docstring)."""
    rng = np.random.default_rng([p.seed, 31337])
    n, m = p.images, p.reflections_per_image
    log_spread = np.log(p.spread) / 2
    domain = p.domain_size_a * np.exp(rng.uniform(-log_spread, log_spread, n))
    mosaic = p.mosaicity_deg * np.exp(rng.uniform(-log_spread, log_spread, n))
    scale = np.exp(rng.normal(0.0, p.scale_spread, n))
    b_factor = rng.uniform(*p.b_range, n)
    limit = crystal.d_min * rng.uniform(*p.limit_range, n)
    bad = rng.random(n) < p.bad_fraction
    shuffled = rng.permutation(crystal.intensity)
    laser, tags = np.zeros(n, dtype=bool), {}
    if crystal.light_intensity is not None:
        laser_rng = np.random.default_rng([p.seed, 27183])
        laser, tags = laser_shots(n, p.laser_fraction, p.delays_ns, laser_rng)
    s_all = np.linalg.norm(crystal.hkl @ crystal.B.T, axis=1)
    parts = []
    for start in range(0, n, chunk):
        img = np.repeat(np.arange(start, min(start + chunk, n)), m)
        refl = rng.integers(0, len(crystal.hkl), len(img))
        s = s_all[refl]
        w_trial2 = width2(
            s, p.domain_size_a / p.trial_width_factor, p.mosaicity_deg * p.trial_width_factor, p
        )
        eps = rng.uniform(-2.5, 2.5, len(img)) * np.sqrt(w_trial2)
        p_true = np.exp(-0.5 * eps**2 / width2(s, domain[img], mosaic[img], p))
        p_trial = np.exp(-0.5 * eps**2 / w_trial2)
        q, q_limit = s**2 / 2, 1.0 / (2 * limit[img] ** 2)
        fade = np.exp(-b_factor[img] * q - 200.0 * np.maximum(q - q_limit, 0.0))
        truth = np.where(bad[img], shuffled[refl], crystal.intensity[refl])
        if crystal.light_intensity is not None:
            truth = np.where(laser[img] & ~bad[img], crystal.light_intensity[refl], truth)
        signal = p.photons * scale[img] * fade * p_true * truth
        signal *= 1 + p.model_error * rng.standard_normal(len(img))
        counts = signal + rng.standard_normal(len(img)) * np.sqrt(
            np.maximum(signal, 0) + p.background
        )
        sigma = np.sqrt(np.maximum(counts, 0) + p.background)
        parts.append((img, crystal.hkl[refl], counts, sigma, p_trial))
    image, hkl, intensity, sigma, partiality = (np.concatenate(c) for c in zip(*parts))
    wavelength = np.full(n, p.wavelength)
    return Observations(image, hkl, intensity, sigma, partiality, n, wavelength, tags)


def trial_settings(p: SyntheticParams) -> dict:
    """The trial's partiality settings the synthetic estimates were made with (MergeParams names)."""
    return dict(
        trial_domain_size_a=p.domain_size_a / p.trial_width_factor,
        trial_mosaicity_deg=p.mosaicity_deg * p.trial_width_factor,
        trial_bandwidth=p.bandwidth,
    )
