"""Orientation (and cell) refinement of a still from scattering vectors, on any detector.

Each indexed lattice point r = U B h is rotated about the axis s0 x r, keeping |r|, until it
lies on the Ewald sphere (the still-shot prediction of DIALS, Sauter et al. 2014); the
predicted diffracted ray s0 + r' is compared in direction with the observed one. The rays'
angular residuals are detector-independent, so this works for spots from any panel layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.geometry import reciprocal_basis
from kernels.crystal.symmetry import CrystalSymmetry

BEAM = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class SphereFit:
    """U : refined rotation; cell : refined cell; rms_mrad : rms angle between the rays."""

    U: np.ndarray
    cell: tuple[float, ...]
    rms_mrad: float


def onto_ewald_sphere(r: np.ndarray, wavelength: float) -> np.ndarray:
    """Lattice points (n, 3) rotated about s0 x r onto the Ewald sphere, |r| kept."""
    k = 1.0 / wavelength
    length = np.linalg.norm(r, axis=1)
    along = -(length**2) / (2.0 * k)  # component along the beam of a point on the sphere
    across = np.sqrt(np.maximum(length**2 - along**2, 0.0))
    perp = r - np.outer(r @ BEAM, BEAM)
    perp /= np.linalg.norm(perp, axis=1, keepdims=True)
    return np.outer(along, BEAM) + across[:, None] * perp


def ray_directions(s: np.ndarray, wavelength: float) -> np.ndarray:
    """Unit directions of the diffracted rays s0 + s."""
    ray = np.asarray(s, dtype=float) + BEAM / wavelength
    return ray / np.linalg.norm(ray, axis=1, keepdims=True)


def refine_on_sphere(
    s: np.ndarray,
    hkl: np.ndarray,
    U: np.ndarray,
    symmetry: CrystalSymmetry,
    wavelength: float,
    refine_cell: bool = True,
) -> SphereFit:
    """Least-squares U (and the cell parameters the crystal system leaves free) for spots `s`
    indexed as `hkl`, minimising the angles between observed and predicted rays."""
    # scipy on first use: a run's prepare imports this module to check trial parameters
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    observed = ray_directions(s, wavelength)
    groups = symmetry.cell_parameter_groups() if refine_cell else []
    hkl = np.asarray(hkl, dtype=float)

    def model(x):
        cell = np.array(symmetry.cell, dtype=float)
        for g, change in zip(groups, x[3:]):
            cell[g] *= 1.0 + change
        rotation = Rotation.from_rotvec(x[:3]).as_matrix() @ U
        return rotation, tuple(float(c) for c in cell)

    def residual(x):
        rotation, cell = model(x)
        r = hkl @ (rotation @ reciprocal_basis(cell)).T
        return (ray_directions(onto_ewald_sphere(r, wavelength), wavelength) - observed).ravel()

    fit = least_squares(residual, np.zeros(3 + len(groups)))
    rotation, cell = model(fit.x)
    rms = float(np.sqrt(np.mean(fit.fun**2) * 3.0)) * 1000.0
    return SphereFit(rotation, cell, rms)
