"""Detector geometry refined jointly over many indexed stills.

Each spot's predicted position is where the ray along s0 + R(w_i) A_i h crosses its panel's
plane (the panel it was observed on, so no spot jumps panels while the solver moves them). The
unknowns are the detector motion of :mod:`.model` plus a small rotation ``w_i`` of every image's
orientation (the cell is held: it fixes the length scale, so the distance is determined). The
residuals are the position differences in pixels, under a robust loss (``soft_l1``), so the
few spots that were wrongly indexed pull little. scipy's trust-region least squares with the
Jacobian's sparsity (a spot depends on the detector, its group and its image only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix

from kernels.crystal.detector import Detector
from kernels.geomrefine.model import (
    GroupFrame,
    gauge_residuals,
    group_frames,
    moved_detector,
    moved_panels,
)
from kernels.geomrefine.spots import IndexedSpots
from kernels.stages.refinement import small_rotation


class GeometryRefinementError(ValueError):
    """The geometry cannot be refined from these spots; the message says why and what to do."""


@dataclass(frozen=True)
class GeometryParams:
    """min_spots : spots a group needs to be refined (fewer: held where it is, and reported).
    loss_scale_px : residual beyond which a spot counts as an outlier (soft_l1 scale).
    outlier_px : a spot farther than this from its prediction is an outlier (not in the rms).
    max_rms_px, min_inliers : the refined rms above which, or the inlier fraction below which,
        the refinement is refused as not converged.
    refine_cell_scale : also refine one length scale of every image's cell (a cell found through
        the geometry being refined carries that geometry's distance error; to first order scale
        and distance trade off, the far spots' curvature tells them apart).
    """

    min_spots: int = 20
    loss_scale_px: float = 1.0
    outlier_px: float = 4.0
    max_rms_px: float = 2.0
    min_inliers: float = 0.5
    gauge_weight: float = 10.0
    refine_cell_scale: bool = False


@dataclass(frozen=True)
class GeometryResult:
    """The refined detector, the motion found, and residuals before and after (pixels)."""

    detector: Detector
    motion: np.ndarray  # [dx, dy, dz, then du, dv, degrees per refined group]
    cell_scale: float  # refined cell lengths / the given ones (1 unless refine_cell_scale)
    refined_groups: list[list[str]]
    held_groups: list[list[str]]
    rms_before_px: float  # of the spots within outlier_px
    rms_after_px: float
    inlier_fraction: float
    residuals_before: np.ndarray  # (n, 2) fs, ss
    residuals_after: np.ndarray


def predicted_positions(
    corners, fast, slow, spots: IndexedSpots, rotations: np.ndarray, cell_scale: float = 1.0
):
    """(n, 2) fs, ss where each spot's ray meets its own panel's plane (NaN if parallel), the
    cells' lengths multiplied by `cell_scale`."""
    A = np.einsum("mij,mjk->mik", rotations, spots.A)[spots.image] / cell_scale
    s = np.einsum("nij,nj->ni", A, spots.hkl.astype(float))
    ray = s + np.stack([np.zeros(len(s)), np.zeros(len(s)), 1.0 / spots.wavelength[spots.image]], 1)
    C, F, S = corners[spots.panel], fast[spots.panel], slow[spots.panel]
    normal = np.cross(F, S)
    t = np.einsum("nk,nk->n", normal, C) / np.einsum("nk,nk->n", normal, ray)
    local = t[:, None] * ray - C
    fs_dual, ss_dual = np.cross(S, normal), np.cross(normal, F)
    fs = np.einsum("nk,nk->n", local, fs_dual) / np.einsum("nk,nk->n", F, fs_dual)
    ss = np.einsum("nk,nk->n", local, ss_dual) / np.einsum("nk,nk->n", S, ss_dual)
    return np.stack([fs, ss], axis=1)


def image_rotations(w: np.ndarray) -> np.ndarray:
    """(m, 3, 3) rotation matrices of the rotation vectors ``w`` (m, 3), radians."""
    return np.array([small_rotation(omega) for omega in w])


class _Problem:
    """The residual function and its sparsity for one detector, grouping and set of spots."""

    def __init__(self, detector, frames: GroupFrame, spots: IndexedSpots, params, refine_detector):
        self.detector, self.frames, self.spots, self.params = detector, frames, spots, params
        self.n_detector = 3 + 3 * frames.n_groups if refine_detector else 0
        self.n_scale = int(refine_detector and params.refine_cell_scale)  # log of the scale
        self.n_global = self.n_detector + self.n_scale
        self.n_images = len(spots.A)

    def split(self, x: np.ndarray):
        """Detector motion, cell scale and the images' rotation vectors of the unknowns `x`."""
        motion = x[: self.n_detector] if self.n_detector else np.zeros(3 + 3 * self.frames.n_groups)
        scale = float(np.exp(x[self.n_detector])) if self.n_scale else 1.0
        return motion, scale, x[self.n_global :].reshape(self.n_images, 3)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        motion, scale, w = self.split(x)
        corners, fast, slow = moved_panels(self.detector, self.frames, motion)
        rotations = image_rotations(w)
        predicted = predicted_positions(corners, fast, slow, self.spots, rotations, scale)
        observed = np.stack([self.spots.fs, self.spots.ss], axis=1)
        gauge = (
            gauge_residuals(motion, self.params.gauge_weight) if self.n_detector else np.zeros(0)
        )
        return np.concatenate([(predicted - observed).ravel(), gauge])

    def sparsity(self):
        n_spots, n_gauge = len(self.spots), 3 if self.n_detector and self.frames.n_groups else 0
        J = lil_matrix((2 * n_spots + n_gauge, self.n_global + 3 * self.n_images), dtype=int)
        rows = np.arange(n_spots)
        owner = self.frames.group_of_panel(len(self.detector.panels))[self.spots.panel]
        for r in (2 * rows, 2 * rows + 1):
            for k in range(3):
                if self.n_detector:
                    J[r, k] = 1
                    grouped = owner >= 0
                    J[r[grouped], 3 + 3 * owner[grouped] + k] = 1
                J[r, self.n_global + 3 * self.spots.image + k] = 1
            J[r, self.n_detector : self.n_global] = 1
        for k in range(n_gauge):
            J[2 * n_spots + k, 3 + k : self.n_detector : 3] = 1
        return J

    def solve(self, x0: np.ndarray):
        return least_squares(
            self.residuals,
            x0,
            jac_sparsity=self.sparsity(),
            loss="soft_l1",
            f_scale=self.params.loss_scale_px,
            x_scale="jac",
            method="trf",
        )


def rms(residuals: np.ndarray, outlier_px: float) -> tuple[float, float]:
    """rms of the inliers (pixels) and the inlier fraction."""
    length = np.sqrt(np.sum(residuals**2, axis=1))
    inliers = length < outlier_px
    if not inliers.any():
        return float("inf"), 0.0
    return float(np.sqrt(np.mean(length[inliers] ** 2))), float(inliers.mean())


def refine_geometry(
    detector: Detector,
    spots: IndexedSpots,
    groups: list[list[str]],
    params: GeometryParams = GeometryParams(),
) -> GeometryResult:
    """Refine ``detector`` (whole-detector shift and ``groups``' in-plane motions) from ``spots``.

    "Before" is the given geometry with only the orientations refined, so the two rms values
    differ by what the geometry alone gains.

    Raises
    ------
    GeometryRefinementError
        Too few spots, or the refined rms stays above ``params.max_rms_px``.
    """
    if len(spots) < max(params.min_spots, 3 * len(spots.A)):
        raise GeometryRefinementError(
            f"only {len(spots)} indexed spots on {len(spots.A)} images: need at least "
            f"{max(params.min_spots, 3 * len(spots.A))} (index more images first)"
        )
    counts = [int(np.isin(spots.panel, [detector.panel_index(n) for n in g]).sum()) for g in groups]
    refined = [g for g, c in zip(groups, counts) if c >= params.min_spots]
    held = [g for g, c in zip(groups, counts) if c < params.min_spots]
    frames = group_frames(detector, refined)
    zeros = np.zeros(3 * len(spots.A))
    before = _Problem(detector, frames, spots, params, refine_detector=False).solve(zeros)
    residuals_before = before.fun[: 2 * len(spots)].reshape(-1, 2)
    problem = _Problem(detector, frames, spots, params, refine_detector=True)
    after = problem.solve(np.concatenate([np.zeros(problem.n_global), before.x]))
    residuals_after = after.fun[: 2 * len(spots)].reshape(-1, 2)
    motion, scale, _ = problem.split(after.x)
    rms_after, inliers = rms(residuals_after, params.outlier_px)
    if not after.success or rms_after > params.max_rms_px or inliers < params.min_inliers:
        raise GeometryRefinementError(
            f"the geometry did not converge: {inliers:.0%} of the spots within "
            f"{params.outlier_px} px after refinement, their rms {rms_after:.2f} px (limits "
            f"{params.min_inliers:.0%}, {params.max_rms_px} px). Check the cell, the indexing and "
            f"that the starting geometry is within a few pixels"
        )
    return GeometryResult(
        moved_detector(detector, frames, motion),
        motion,
        scale,
        refined,
        held,
        rms(residuals_before, params.outlier_px)[0],
        rms_after,
        inliers,
        residuals_before,
        residuals_after,
    )
