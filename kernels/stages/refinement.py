"""Refinement of a still's crystal orientation (and optionally its cell) against the spots.

Gauss-Newton least squares of a small rotation applied to the indexing solution, minimising
the detector-plane distance between each indexed spot's centroid and the projection of its
lattice point (the direction of s0 + U B h, as the spots were recorded). With ``refine_cell``
the cell parameters the crystal system leaves free (a = b tied in tetragonal, ...) are refined
too, as relative changes. Spots further than ``outlier_px`` from their prediction are dropped
and the fit repeated. A solution is refused, with the reason, when too few spots remain, their
rms residual stays too large, or the cell moved further than ``max_cell_change``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.geometry import reciprocal_basis
from kernels.crystal.panel_image import ImageGeometry, projection_near
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.stages.ewald_refinement import onto_ewald_sphere


@dataclass(frozen=True)
class RefinementParams:
    """Tunable refinement parameters (the trial's ``refinement`` section)."""

    iterations: int = 4
    outlier_px: float = 2.0
    max_rmsd_px: float = 0.8
    min_spots: int = 10
    refine_cell: int = 0  # 1: refine the free cell parameters too
    max_cell_change: float = 0.02  # largest accepted relative change of a cell parameter
    min_explained_fraction: float = 0.6  # of all the image's spots, within outlier_px (guards.py)
    ewald_prediction: int = 0  # 1: predict each spot from its lattice point rotated onto the sphere


class RefinementError(Exception):
    """A solution that does not survive refinement; the message is the reason."""


@dataclass(frozen=True)
class RefinedOrientation:
    """U : refined rotation. cell : refined (or given) cell. used : (n,) bool, spots kept in the
    fit. rmsd_px : their rms residual."""

    U: np.ndarray
    cell: tuple[float, ...]
    used: np.ndarray
    rmsd_px: float

    @property
    def B(self) -> np.ndarray:
        return reciprocal_basis(self.cell)

    @property
    def n_used(self) -> int:
        return int(self.used.sum())


def small_rotation(omega: np.ndarray) -> np.ndarray:
    """Rotation matrix of the rotation vector `omega` (radians, Rodrigues)."""
    angle = float(np.linalg.norm(omega))
    if angle < 1e-15:
        return np.eye(3)
    k = omega / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * (K @ K)


def position_residuals(U, B, hkl, col, row, wavelength, geometry, on_sphere=0) -> np.ndarray:
    """Predicted minus observed (col, row) of each spot, flattened (2n,), pixels (on a
    multi-panel detector, in the pixels of the panel each spot was seen on).

    The prediction is the ray s0 + U B h (how the simulator renders a spot) or, `on_sphere`,
    s0 + r' with r' the lattice point rotated onto the Ewald sphere about s0 x r (DIALS's
    stills model, what a real crystal's spot does when its lattice point is off the sphere).
    """
    s = hkl @ (U @ B).T
    if on_sphere:
        s = onto_ewald_sphere(s, wavelength)
    pc, pr = projection_near(s, wavelength, geometry, row)
    return np.concatenate([pc - col, pr - row])


def changed_cell(cell, groups, factors) -> tuple[float, ...]:
    """`cell` with each group of parameters multiplied by (1 + its factor)."""
    cell = list(cell)
    for group, f in zip(groups, factors):
        for i in group:
            cell[i] *= 1.0 + f
    return tuple(cell)


def refine_orientation(
    U0: np.ndarray,
    symmetry: CrystalSymmetry,
    hkl: np.ndarray,
    col,
    row,
    photons,
    wavelength: float,
    geometry: ImageGeometry,
    params: RefinementParams = RefinementParams(),
    step: float = 1e-5,
) -> RefinedOrientation:
    """Least-squares orientation (and cell) from the spot positions of indexed spots `hkl` (n, 3).

    Each spot is weighted by its photons: a centroid's variance falls as 1 / photons.

    Raises
    ------
    RefinementError
        Fewer than ``min_spots`` spots within ``outlier_px`` of their prediction, an rms
        residual above ``max_rmsd_px``, or a cell change beyond ``max_cell_change``.
    """
    col, row = np.asarray(col, float), np.asarray(row, float)
    sqrt_w = np.tile(np.sqrt(np.maximum(np.asarray(photons, float), 1.0)), 2)
    groups = symmetry.cell_parameter_groups() if params.refine_cell else []
    used = np.ones(len(col), dtype=bool)
    U, cell, B = U0, symmetry.cell, symmetry.B
    for _ in range(2):  # fit, drop outliers, fit again
        if used.sum() < params.min_spots:
            break
        data = (hkl[used], col[used], row[used], wavelength, geometry, params.ewald_prediction)
        w = sqrt_w[np.tile(used, 2)]
        for _ in range(params.iterations):
            r0 = position_residuals(U, B, *data)
            columns = [
                (position_residuals(small_rotation(step * e) @ U, B, *data) - r0) / step
                for e in np.eye(3)
            ]
            columns += [
                (
                    position_residuals(U, reciprocal_basis(changed_cell(cell, [g], [step])), *data)
                    - r0
                )
                / step
                for g in groups
            ]
            delta, *_ = np.linalg.lstsq(np.stack(columns, 1) * w[:, None], -r0 * w, rcond=None)
            U = small_rotation(delta[:3]) @ U
            if groups:
                cell = changed_cell(cell, groups, delta[3:])
                B = reciprocal_basis(cell)
            if np.abs(delta).max() < 1e-7:
                break
        r = position_residuals(U, B, hkl, col, row, wavelength, geometry, params.ewald_prediction)
        r = r.reshape(2, -1)
        used = np.hypot(*r) < params.outlier_px
    n = int(used.sum())
    if n < params.min_spots:
        raise RefinementError(
            f"{n} spots within {params.outlier_px} px of their prediction < {params.min_spots} "
            "(refinement.min_spots): a wrong orientation or a detector geometry that is off"
        )
    r = position_residuals(
        U, B, hkl[used], col[used], row[used], wavelength, geometry, params.ewald_prediction
    )
    rmsd = float(np.sqrt(np.mean(r.reshape(2, -1).T ** 2) * 2))
    if rmsd > params.max_rmsd_px:
        raise RefinementError(
            f"rms spot residual {rmsd:.2f} px > {params.max_rmsd_px} px (refinement.max_rmsd_px): "
            "check the beam centre and detector distance before loosening this gate"
        )
    change = max(abs(c / c0 - 1.0) for c, c0 in zip(cell, symmetry.cell))
    if change > params.max_cell_change:
        raise RefinementError(
            f"cell changed by {100 * change:.1f} % > {100 * params.max_cell_change:.1f} % "
            "(refinement.max_cell_change): check the target cell (crystal.*)"
        )
    return RefinedOrientation(U, cell, used, rmsd)
