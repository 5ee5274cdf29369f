"""Cell-free indexing of single stills: simulated spots of a known crystal give back its reduced
cell; two crystals in one still give both; too few or random spots are refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.cell.fft_indexing import CellFreeError, CellFreeParams, index_cell_free, niggli_cell
from tests.kernels.cell.stills import simulate_stills

LYSOZYME = ((79.1, 79.1, 38.4, 90.0, 90.0, 90.0), "P 43 21 2")


def test_still_gives_its_reduced_cell_and_orientation():
    (s, U), *_ = simulate_stills(*LYSOZYME, 1, seed=5)
    lattice = index_cell_free(s)[0]
    assert lattice.fraction > 0.9 and lattice.rms < 0.05
    assert np.allclose(lattice.reduced_cell, niggli_cell(LYSOZYME[0]), rtol=3e-3, atol=0.2)
    # the refined basis is the crystal's: its reciprocal indexes the true orientation's spots
    x = s[lattice.indexed] @ lattice.basis.T
    assert np.abs(x - np.rint(x)).max() < 0.15
    assert abs(abs(np.linalg.det(lattice.basis)) - 79.1 * 79.1 * 38.4) < 0.01 * 79.1**2 * 38.4


def test_two_crystals_in_one_still_are_both_found():
    (s1, _), *_ = simulate_stills(*LYSOZYME, 1, seed=6, spurious=0)
    (s2, _), *_ = simulate_stills(
        (61.2, 52.3, 40.1, 78.3, 85.1, 70.4), "P 1", 1, seed=7, spurious=0
    )
    s = np.concatenate([s1, s2])
    lattices = index_cell_free(s, CellFreeParams(max_lattices=2, min_indexed_fraction=0.2))
    assert len(lattices) == 2
    found = sorted((lat.reduced_cell for lat in lattices), key=lambda c: c[2])
    assert np.allclose(found[0], niggli_cell((61.2, 52.3, 40.1, 78.3, 85.1, 70.4)), atol=0.5)
    assert np.allclose(found[1], niggli_cell(LYSOZYME[0]), atol=0.5)
    assert not (lattices[0].indexed & lattices[1].indexed).any()


def test_too_few_spots_is_refused():
    (s, _), *_ = simulate_stills(*LYSOZYME, 1, seed=5)
    with pytest.raises(CellFreeError, match="5 spots < 10 needed"):
        index_cell_free(s[:5])


def test_random_spots_give_no_lattice():
    rng = np.random.default_rng(3)
    ray = rng.normal(size=(150, 3)) * [0.3, 0.3, 0.0] + [0, 0, 1.0]
    s = (ray / np.linalg.norm(ray, axis=1, keepdims=True) - [0, 0, 1]) / 1.3
    with pytest.raises(CellFreeError, match="indexes|collapsed|coplanar"):
        index_cell_free(s)
