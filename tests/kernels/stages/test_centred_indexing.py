"""Known-cell indexing of centred cells: the primitive reciprocal basis of each centring, and
simulated C-centred stills indexed on the centred lattice's points only."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.crystal.symmetry import CrystalSymmetry
from kernels.stages.indexing import centring_basis, index_s, plan_indexing
from tests.kernels.cell.lattices import LATTICES
from tests.kernels.cell.stills import simulate_stills


@pytest.mark.parametrize(
    "space_group, points", [("P 2 2 2", 1), ("C 2 2 21", 2), ("I 2 3", 2), ("F 2 3", 4), ("H 3", 3)]
)
def test_primitive_reciprocal_basis_of_each_centring(space_group, points):
    t = CrystalSymmetry.create((50, 50, 60, 90, 90, 120 if "H" in space_group else 90), space_group)
    basis = centring_basis(t.centring_vectors)
    if points == 1:
        assert basis is None
        return
    assert round(np.linalg.det(basis)) == points  # right-handed, `points` times the volume
    phase = basis.T @ t.centring_vectors.T
    assert np.allclose(phase, np.rint(phase))  # its vectors are reciprocal-lattice vectors


def test_c_centred_stills_index_on_the_lattice_only():
    cell, space_group = LATTICES["oC"]
    symmetry = CrystalSymmetry.create(cell, space_group)
    plan = plan_indexing(
        symmetry.B, symmetry.lattice_rotations, centring_vectors=symmetry.centring_vectors
    )
    errors = []
    for s, U in simulate_stills(cell, space_group, 6, seed=5):
        solution = index_s(s, plan)
        hkl = solution.hkl[solution.indexed]
        assert np.all((hkl[:, 0] + hkl[:, 1]) % 2 == 0)
        assert solution.n_indexed >= len(s) - 3  # all but the 3 spurious spots
        errors.append(symmetry.orientation_difference_deg(solution.U, U))
    assert max(errors) < 0.1
