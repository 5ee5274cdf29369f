"""Measuring an image's integration model from its refined solution and its spots.

The spot width is measured at the refined predictions of the indexed spots (more accurate than
the spot finder's box centroids for wide spots); the domain size and mosaicity from which of the
lattice points near the Ewald sphere, on good pixels, were found as indexed spots. See
kernels/stages/estimation.py for both estimators.
"""

from __future__ import annotations

import numpy as np

from kernels.crystal.panel_image import ImageGeometry, image_projection
from kernels.crystal.symmetry import pack
from kernels.stages.estimation import (
    ImageModel,
    PartialityLikelihood,
    estimate_partiality_model,
    measure_spot_sigma,
)
from kernels.stages.integration import IntegrationPlan, near_sphere
from kernels.stages.pooling import ModelPool

CANDIDATE_CUT = 0.008  # 1/A, lattice points this close to the sphere are candidates
EDGE_PX = 8  # candidates this close to the array border cannot be found as spots


def findable(col, row, plan: IntegrationPlan) -> np.ndarray:
    """Candidates whose position is on a good pixel away from the border."""
    rows, cols = plan.shape
    ok = (col >= EDGE_PX) & (col < cols - EDGE_PX) & (row >= EDGE_PX) & (row < rows - EDGE_PX)
    ok &= np.isfinite(col) & np.isfinite(row)
    flat = np.where(ok, np.rint(np.nan_to_num(row)) * cols + np.rint(np.nan_to_num(col)), 0)
    return ok & plan.good[flat.astype(np.int64)]


def measure_image_model(
    photons: np.ndarray,
    spot_background: np.ndarray,
    hkl: np.ndarray,
    U: np.ndarray,
    B: np.ndarray,
    wavelength: float,
    geometry: ImageGeometry,
    plan: IntegrationPlan,
    pool: ModelPool | None = None,
) -> ImageModel:
    """The image's spot width, domain size and mosaicity from its indexed spots `hkl` (n, 3)
    (their spot-finder backgrounds `spot_background`) and refined orientation U and cell B;
    with a `pool`, the partiality model is pooled toward the run's (kernels/stages/pooling.py)."""
    p = plan.params
    pc, pr = image_projection(hkl @ (U @ B).T, wavelength, geometry)
    on = np.isfinite(pc) & np.isfinite(pr)  # a multi-panel prediction may fall into a gap
    sigma = measure_spot_sigma(photons, pc[on], pr[on], np.asarray(spot_background)[on])
    if not np.isfinite(sigma):
        sigma = p.signal_radius / p.signal_sigmas
    s, eps, near = near_sphere(U, wavelength, plan, B, CANDIDATE_CUT)
    col, row = image_projection(s[near], wavelength, geometry)
    near = near[findable(col, row, plan)]
    found = np.isin(pack(plan.hkl[near]), pack(hkl))
    if found.sum() < 5:
        return ImageModel(sigma, p.domain_size_a, p.mosaicity_deg)
    s2 = np.einsum("ij,ij->i", s[near], s[near])
    likelihood = PartialityLikelihood(eps[near], s2, found, p.bandwidth, wavelength)
    domain, mosaicity = estimate_partiality_model(likelihood)
    if pool is not None:
        domain, mosaicity = pool.choose((domain, mosaicity), likelihood)
    return ImageModel(sigma, domain, mosaicity)
