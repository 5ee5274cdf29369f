"""Simulated stills as spot scattering vectors, from the simulator's physics: reflections with
enough partiality, projected on the default detector, centroided with 0.3 px noise, mapped back
to s; plus a few spurious spots. Truth for cell-free indexing and cell determination."""

from __future__ import annotations

import gemmi
import numpy as np

from facility.beamline.simulate import SimulationParams, partiality
from facility.beamline.variants import draw_crystal
from kernels.crystal.geometry import (
    default_geometry,
    excitation_error,
    pixel_to_s,
    project_to_detector,
    random_rotation,
    reciprocal_basis,
)


def all_hkl(cell, space_group: str, d_min: float) -> np.ndarray:
    """Every non-absent reflection (both Friedel mates and all symmetry mates) to d_min."""
    uc, sg = gemmi.UnitCell(*cell), gemmi.SpaceGroup(space_group)
    limits = [int(uc.a / d_min) + 1, int(uc.b / d_min) + 1, int(uc.c / d_min) + 1]
    grid = np.stack(
        np.meshgrid(*[np.arange(-n, n + 1) for n in limits], indexing="ij"), -1
    ).reshape(-1, 3)
    B = reciprocal_basis(cell)
    grid = grid[(np.linalg.norm(grid @ B.T, axis=1) <= 1 / d_min) & np.any(grid != 0, axis=1)]
    ops = sg.operations()
    return grid[[not ops.is_systematically_absent([int(v) for v in h]) for h in grid]]


def simulate_stills(cell, space_group: str, n: int, seed: int = 0, spurious: int = 3, d_min=2.0):
    """n stills: list of (s (k, 3), U). Spots need partiality > 0.3 (a strong enough spot)."""
    rng = np.random.default_rng(seed)
    params = SimulationParams(cell=tuple(cell), space_group=space_group, d_min=d_min)
    geometry = default_geometry()
    hkl = all_hkl(cell, space_group, d_min)
    B = reciprocal_basis(cell)
    crystal = draw_crystal(params, rng)  # the defaults: no spread, no draw from rng
    stills = []
    for _ in range(n):
        U = random_rotation(rng)
        s = hkl @ (U @ B).T
        wavelength = params.wavelength
        on = partiality(s, excitation_error(s, wavelength), params, crystal) > 0.3
        col, row = project_to_detector(s[on], wavelength, geometry)
        rows, cols = geometry.shape
        col = np.concatenate([col, rng.uniform(0, cols, spurious)])
        row = np.concatenate([row, rng.uniform(0, rows, spurious)])
        keep = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        col = col[keep] + rng.normal(0, 0.3, keep.sum())
        row = row[keep] + rng.normal(0, 0.3, keep.sum())
        stills.append((pixel_to_s(col, row, wavelength, geometry), U))
    return stills


def sparse_stills(cell, space_group: str, n: int, spots: int, spurious: int, seed: int = 0):
    """n stills (s (k, 3) each) with `spots` random spots of the lattice, drawn from its
    3 x `spots` lowest-resolution ones (a peak search finds the strong, low-angle spots), and
    `spurious` spots anywhere on the detector: few spots on the lattice, as on real 5-HT2B."""
    rng = np.random.default_rng(seed)
    geometry = default_geometry()
    wavelength = SimulationParams(cell=tuple(cell), space_group=space_group).wavelength
    rows, cols = geometry.shape
    stills = []
    for s, _ in simulate_stills(cell, space_group, n, seed=seed, spurious=0):
        low = s[np.argsort(np.linalg.norm(s, axis=1))[: 3 * spots]]
        kept = low[rng.choice(len(low), min(spots, len(low)), replace=False)]
        col, row = rng.uniform(0, cols, spurious), rng.uniform(0, rows, spurious)
        stills.append(np.concatenate([kept, pixel_to_s(col, row, wavelength, geometry)]))
    return stills
