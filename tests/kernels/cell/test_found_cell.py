"""Each image's cell-free lattice given the determined cell (``refine-geometry --cell``): a basis
in another setting and scale comes back as the true cell in the true orientation, with its
indices carried along; a lattice that is not the determined one is left out and counted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from kernels.cell.found_cell import with_found_cell
from tests.kernels.geomrefine.synthetic import indexed_stills, modular_detector

TP = {
    "cell": [79.1, 79.1, 38.4, 90, 90, 90],
    "transform_from_reduced": [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
}
SETTING = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 1]])  # unimodular, far from reduced


def scattering(spots) -> np.ndarray:
    return np.einsum("nij,nj->ni", spots.A[spots.image], spots.hkl.astype(float))


def cell_free_like(spots, scale: float):
    """The stills as cell-free indexing leaves them: another basis, the cell `scale` too long."""
    bases = np.linalg.inv(spots.A) * scale
    return replace(
        spots, hkl=spots.hkl @ SETTING.T, A=np.linalg.inv(np.einsum("ij,mjk->mik", SETTING, bases))
    )


def test_the_determined_cell_replaces_each_images_own():
    true = indexed_stills(modular_detector(), 4, seed=1)
    found, left_out = with_found_cell(cell_free_like(true, 1.004), {"main": TP})
    assert left_out == 0 and len(found) == len(true)
    assert np.allclose(scattering(found), scattering(true), atol=1e-9)


def test_another_lattice_is_left_out_and_a_bad_report_refused():
    spots = cell_free_like(indexed_stills(modular_detector(), 3, seed=2), 1.0)
    other = {"main": {**TP, "cell": [70.0, 70.0, 45.0, 90, 90, 90]}}
    found, left_out = with_found_cell(spots, other)
    assert left_out == 3 and len(found) == 0
    with pytest.raises(ValueError, match="transform_from_reduced"):
        with_found_cell(spots, {"main": {"cell": TP["cell"]}})
