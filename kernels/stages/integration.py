"""Prediction and summation integration of the reflections of a still.

Every reflection of the target crystal to ``d_min`` is tested against the Ewald sphere of the
shot: its partiality is estimated from its excitation error with a Gaussian width combining
domain size, mosaic spread (grows with |s|) and spectral bandwidth (grows with |s|^2), and those
above ``min_partiality`` are predicted on the detector. Each is integrated by summation over a
disc around the prediction, minus the mean of a surrounding annulus (bright annulus pixels —
neighbouring spots — excluded). Reflections whose disc touches a bad or gap pixel are skipped,
not integrated wrongly.

With an :class:`~kernels.stages.estimation.ImageModel` (measured on the image, see
kernels/stages/estimation.py) the domain size and mosaicity are the image's, the disc's radius is
``signal_sigmas`` times the measured spot width (never below ``signal_radius``) with the annulus
just outside it, and the sum over the disc's good pixels is divided by the fraction of a
Gaussian spot of that width they hold, so a disc with a few bad or gap pixels is still measured
(down to ``min_held`` of the spot) rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from kernels.crystal.geometry import excitation_error
from kernels.crystal.panel_image import ImageGeometry, image_projection, panel_coordinates
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.reflections import Reflections
from kernels.stages.estimation import ImageModel


@dataclass(frozen=True)
class IntegrationParams:
    """Tunable integration parameters (the trial's ``integration`` section)."""

    d_min: float = 1.9
    mosaicity_deg: float = 0.05
    bandwidth: float = 2.5e-3  # fractional rms spectral width within a shot
    domain_size_a: float = 5000.0
    min_partiality: float = 0.05
    signal_radius: float = 3.0  # pixels
    background_inner: float = 4.0
    background_outer: float = 7.0
    background_clip: float = 4.0  # annulus pixels this many sigmas above the median are ignored
    adaptive: int = 1  # 1: measure spot size, domain size and mosaicity on each image
    signal_sigmas: float = 3.0  # adaptive disc radius in measured spot widths
    background_width: float = 3.0  # adaptive annulus width, pixels
    min_held: float = 0.8  # adaptive: least fraction of a spot on good disc pixels (bad ones out)
    pool_evidence: float = 0.0  # adaptive: > 0 pools models toward the run's (order-dependent)


@dataclass(frozen=True)
class IntegrationPlan:
    """Per-crystal, per-detector precomputation for :func:`integrate_still`."""

    params: IntegrationParams
    hkl: np.ndarray  # (n, 3) int, every non-absent reflection to d_min
    h: np.ndarray  # its columns as float, for BLAS-free products
    k: np.ndarray
    l: np.ndarray
    B: np.ndarray
    good: np.ndarray  # flat bool, pixels that may be integrated
    shape: tuple[int, int]


def sphere_reflections(symmetry: CrystalSymmetry, d_min: float) -> np.ndarray:
    """Every reflection (P1, full sphere, without systematic absences) with d >= d_min, (n, 3)."""
    B = symmetry.B
    limits = np.ceil(np.linalg.norm(np.linalg.inv(B), axis=1) / d_min).astype(int)
    grid = np.stack(
        np.meshgrid(*[np.arange(-n, n + 1) for n in limits], indexing="ij"), -1
    ).reshape(-1, 3)
    s = np.linalg.norm(grid @ B.T, axis=1)
    grid = grid[(s > 0) & (s <= 1.0 / d_min)]
    return grid[~symmetry.absent(grid)]


def plan_integration(
    symmetry: CrystalSymmetry,
    geometry: ImageGeometry,
    mask: np.ndarray,
    params: IntegrationParams = IntegrationParams(),
) -> IntegrationPlan:
    """Precompute the reflection list of the integration."""
    hkl = sphere_reflections(symmetry, params.d_min)
    h, k, l = (np.ascontiguousarray(c, dtype=float) for c in hkl.T)
    return IntegrationPlan(
        params, hkl, h, k, l, symmetry.B, np.asarray(mask, bool).reshape(-1), geometry.shape
    )


@lru_cache(maxsize=32)
def box_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the (2 radius + 1)^2 box around a prediction."""
    d = np.arange(-radius, radius + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    return dr, dc


def image_params(params: IntegrationParams, model: ImageModel | None) -> IntegrationParams:
    """The integration parameters of one image: the trial's, with the measured model applied."""
    if model is None:
        return params
    radius = max(params.signal_radius, params.signal_sigmas * model.spot_sigma_px)
    inner = max(params.background_inner, radius + 1.0)
    return replace(
        params,
        domain_size_a=model.domain_size_a,
        mosaicity_deg=model.mosaicity_deg,
        signal_radius=radius,
        background_inner=inner,
        background_outer=max(params.background_outer, inner + params.background_width),
    )


def partiality(
    s: np.ndarray, epsilon: np.ndarray, wavelength: float, params: IntegrationParams
) -> np.ndarray:
    """Estimated recorded fraction of each reflection from its excitation error (Gaussian model)."""
    s2 = np.einsum("ij,ij->i", s, s)
    width2 = (
        (1.0 / params.domain_size_a) ** 2
        + np.radians(params.mosaicity_deg) ** 2 * s2
        + (params.bandwidth * wavelength / 2.0) ** 2 * s2 * s2
    )
    return np.exp(-0.5 * epsilon**2 / width2)


def predict(
    U: np.ndarray,
    wavelength: float,
    geometry: ImageGeometry,
    plan: IntegrationPlan,
    B: np.ndarray | None = None,
    model: ImageModel | None = None,
):
    """Reflections excited on this shot whose integration box lies on the detector (B: the
    image's refined cell, default the target cell; model: the image's measured model).

    Returns
    -------
    hkl (m, 3) int, partiality (m,), col (m,), row (m,)
    """
    p = image_params(plan.params, model)
    s, eps, near = near_sphere(U, wavelength, plan, B)
    part = partiality(s[near], eps[near], wavelength, p)
    keep = near[part >= p.min_partiality]
    part = part[part >= p.min_partiality]
    col, row = image_projection(s[keep], wavelength, geometry)
    margin = int(np.ceil(p.background_outer)) + 1
    rows, cols = plan.shape
    on = (col >= margin) & (col < cols - margin) & (row >= margin) & (row < rows - margin)
    return plan.hkl[keep[on]], part[on], col[on], row[on]


def near_sphere(U: np.ndarray, wavelength: float, plan: IntegrationPlan, B=None, cut=0.01):
    """Scattering vectors and excitation errors of every reflection, and the indices of those
    within `cut` (1/A) of the Ewald sphere."""
    A = U @ (plan.B if B is None else B)
    s = np.stack([plan.h * A[i, 0] + plan.k * A[i, 1] + plan.l * A[i, 2] for i in range(3)], axis=1)
    eps = excitation_error(s, wavelength)
    return s, eps, np.flatnonzero(np.abs(eps) < cut)


def spot_fraction_held(dist: np.ndarray, counted: np.ndarray, model: ImageModel | None):
    """Fraction of each spot's photons on the `counted` pixels of its box (a Gaussian of the
    measured width; 1 without a model, where discs with a bad pixel are skipped instead)."""
    if model is None:
        return np.ones(len(dist))
    g = np.exp(-0.5 * (dist / model.spot_sigma_px) ** 2)
    return (g * counted).sum(axis=1) / g.sum(axis=1)


def integrate_still(
    photons: np.ndarray,
    U: np.ndarray,
    wavelength: float,
    geometry: ImageGeometry,
    plan: IntegrationPlan,
    B: np.ndarray | None = None,
    model: ImageModel | None = None,
) -> Reflections:
    """Predict and summation-integrate the reflections of one calibrated still."""
    p = image_params(plan.params, model)
    hkl, part, col, row = predict(U, wavelength, geometry, plan, B, model)
    box_dr, box_dc = box_offsets(int(np.ceil(p.background_outer)))
    rr = np.rint(row).astype(np.int64)[:, None] + box_dr
    cc = np.rint(col).astype(np.int64)[:, None] + box_dc
    flat = rr * plan.shape[1] + cc
    values = photons.reshape(-1)[flat]
    good = plan.good[flat]
    dist = np.hypot(rr - row[:, None], cc - col[:, None])
    signal = dist <= p.signal_radius
    ring = (dist >= p.background_inner) & (dist <= p.background_outer) & good
    held = spot_fraction_held(dist, signal & good, model)
    ok = (held >= p.min_held if model else ~(signal & ~good).any(axis=1)) & (ring.sum(axis=1) >= 10)
    values, signal, ring, held = values[ok], (signal & good)[ok], ring[ok], held[ok]
    ring_values = np.where(ring, values, np.nan)
    median = np.nanmedian(ring_values, axis=1)
    ring &= values <= (median + p.background_clip * np.sqrt(np.maximum(median, 0.0) + 1.0))[:, None]
    n_bg = ring.sum(axis=1)
    bg = (values * ring).sum(axis=1) / n_bg
    bg_var = (((values - bg[:, None]) ** 2) * ring).sum(axis=1) / np.maximum(n_bg - 1, 1)
    n_sig = signal.sum(axis=1)
    net = values - bg[:, None]
    intensity = (net * signal).sum(axis=1) / held
    variance = (
        (np.maximum(net, 0.0) * signal).sum(axis=1) + n_sig * bg_var + n_sig**2 * bg_var / n_bg
    ) / held**2
    hkl = hkl[ok]
    d = 1.0 / np.linalg.norm(hkl @ plan.B.T, axis=1)
    sigma = np.sqrt(np.maximum(variance, 1e-6))
    panel, fs, ss = panel_coordinates(col[ok], row[ok], geometry)
    return Reflections(hkl, intensity, sigma, part[ok], col[ok], row[ok], d, panel, fs, ss)
