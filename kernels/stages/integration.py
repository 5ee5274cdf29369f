"""Prediction and summation integration of the reflections of a still.

Every reflection of the target crystal to ``d_min`` is tested against the Ewald sphere of the
shot: its partiality is estimated from its excitation error with a Gaussian width combining
domain size, mosaic spread (grows with |s|) and spectral bandwidth (grows with |s|^2), and those
above ``min_partiality`` are predicted on the detector. Each is integrated by summation over a
disc around the prediction, minus the mean of a surrounding annulus (bright annulus pixels —
neighbouring spots — excluded). Reflections whose disc touches a bad or gap pixel are skipped,
not integrated wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.geometry import DetectorGeometry, excitation_error, project_to_detector
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.reflections import Reflections


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
    box_dr: np.ndarray  # offsets of the (2 r + 1)^2 box around a prediction
    box_dc: np.ndarray


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
    geometry: DetectorGeometry,
    mask: np.ndarray,
    params: IntegrationParams = IntegrationParams(),
) -> IntegrationPlan:
    """Precompute the reflection list and the pixel box of the integration."""
    r = int(np.ceil(params.background_outer))
    d = np.arange(-r, r + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    hkl = sphere_reflections(symmetry, params.d_min)
    h, k, l = (np.ascontiguousarray(c, dtype=float) for c in hkl.T)
    return IntegrationPlan(
        params, hkl, h, k, l, symmetry.B, np.asarray(mask, bool).reshape(-1), geometry.shape, dr, dc
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
    geometry: DetectorGeometry,
    plan: IntegrationPlan,
    B: np.ndarray | None = None,
):
    """Reflections excited on this shot whose integration box lies on the detector (B: the
    image's refined cell, default the target cell).

    Returns
    -------
    hkl (m, 3) int, partiality (m,), col (m,), row (m,)
    """
    p = plan.params
    A = U @ (plan.B if B is None else B)
    s = np.stack([plan.h * A[i, 0] + plan.k * A[i, 1] + plan.l * A[i, 2] for i in range(3)], axis=1)
    eps = excitation_error(s, wavelength)
    near = np.flatnonzero(np.abs(eps) < 0.01)  # cheap cut before the width model
    part = partiality(s[near], eps[near], wavelength, p)
    keep = near[part >= p.min_partiality]
    part = part[part >= p.min_partiality]
    col, row = project_to_detector(s[keep], wavelength, geometry)
    margin = int(np.ceil(p.background_outer)) + 1
    rows, cols = plan.shape
    on = (col >= margin) & (col < cols - margin) & (row >= margin) & (row < rows - margin)
    return plan.hkl[keep[on]], part[on], col[on], row[on]


def integrate_still(
    photons: np.ndarray,
    U: np.ndarray,
    wavelength: float,
    geometry: DetectorGeometry,
    plan: IntegrationPlan,
    B: np.ndarray | None = None,
) -> Reflections:
    """Predict and summation-integrate the reflections of one calibrated still."""
    p = plan.params
    hkl, part, col, row = predict(U, wavelength, geometry, plan, B)
    rr = np.rint(row).astype(np.int64)[:, None] + plan.box_dr
    cc = np.rint(col).astype(np.int64)[:, None] + plan.box_dc
    flat = rr * plan.shape[1] + cc
    values = photons.reshape(-1)[flat]
    good = plan.good[flat]
    dist = np.hypot(rr - row[:, None], cc - col[:, None])
    signal = dist <= p.signal_radius
    ring = (dist >= p.background_inner) & (dist <= p.background_outer) & good
    ok = ~(signal & ~good).any(axis=1) & (ring.sum(axis=1) >= 10)
    values, signal, ring = values[ok], signal[ok], ring[ok]
    ring_values = np.where(ring, values, np.nan)
    median = np.nanmedian(ring_values, axis=1)
    ring &= values <= (median + p.background_clip * np.sqrt(np.maximum(median, 0.0) + 1.0))[:, None]
    n_bg = ring.sum(axis=1)
    bg = (values * ring).sum(axis=1) / n_bg
    bg_var = (((values - bg[:, None]) ** 2) * ring).sum(axis=1) / np.maximum(n_bg - 1, 1)
    n_sig = signal.sum(axis=1)
    net = values - bg[:, None]
    intensity = (net * signal).sum(axis=1)
    variance = (
        (np.maximum(net, 0.0) * signal).sum(axis=1) + n_sig * bg_var + n_sig**2 * bg_var / n_bg
    )
    hkl = hkl[ok]
    d = 1.0 / np.linalg.norm(hkl @ plan.B.T, axis=1)
    return Reflections(
        hkl, intensity, np.sqrt(np.maximum(variance, 1e-6)), part[ok], col[ok], row[ok], d
    )
