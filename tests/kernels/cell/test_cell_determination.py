"""Cell determination from many stills indexed cell-free: six Bravais lattices recovered from
simulated spots; cells across Niggli boundaries cluster as one; mixed crystals and too few
images give clear messages."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.cell.determination import CellDeterminationError, determine_cell
from kernels.cell.fft_indexing import CellFreeError, index_cell_free, niggli_cell
from tests.kernels.cell.lattices import LATTICES
from tests.kernels.cell.stills import simulate_stills

IMAGES = 40  # per lattice: enough for a cluster of ten; bench/cell_bench.py runs 1000


def noisy_reduced_cells(cell, n, seed, length=0.003, angle=0.3):
    """Reduced cells of n noisy measurements of `cell` (relative length, degrees rms)."""
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        noisy = np.array(cell) * np.r_[1 + length * rng.standard_normal(3), np.ones(3)]
        noisy[3:] += angle * rng.standard_normal(3)
        cells.append(niggli_cell(tuple(noisy)))
    return np.array(cells)


@pytest.mark.parametrize("symbol", list(LATTICES))
def test_lattice_found_from_simulated_stills(symbol):
    cell, space_group = LATTICES[symbol]
    cells = []
    for s, _ in simulate_stills(cell, space_group, IMAGES, seed=11):
        try:
            cells.append(index_cell_free(s)[0].reduced_cell)
        except CellFreeError:
            pass
    assert len(cells) >= 0.7 * IMAGES
    result = determine_cell(cells)
    found = result.main.solution
    assert found.bravais.symbol == symbol
    assert np.allclose(found.cell[:3], cell[:3], rtol=3e-3)
    assert np.allclose(found.cell[3:], cell[3:], atol=0.3)
    assert space_group.replace("H 3", "R 3") in [
        g.replace(":H", "") for g in result.main.space_groups()
    ]
    assert len(result.main.members) >= 0.9 * len(cells)


def test_cells_either_side_of_niggli_boundaries_form_one_cluster():
    # right angles with noise: the reduced cell flips between all-acute and all-obtuse forms;
    # a = b tetragonal: it swaps axes
    cells = noisy_reduced_cells((79.1, 79.1, 38.4, 90, 90, 90), 80, seed=1)
    assert len({tuple(np.sign(np.round(c[3:], 3) - 90)) for c in cells}) > 1  # both sides
    result = determine_cell(cells)
    assert len(result.main.members) == 80 and not result.others
    assert result.main.solution.bravais.symbol == "tP"
    assert np.allclose(result.main.solution.cell[:3], (79.1, 79.1, 38.4), rtol=2e-3)


def test_two_cells_mixed_are_both_reported_majority_chosen():
    lysozyme = noisy_reduced_cells((79.1, 79.1, 38.4, 90, 90, 90), 60, seed=2)
    thermolysin = noisy_reduced_cells((93.3, 93.3, 131.0, 90, 90, 120), 25, seed=3)
    result = determine_cell(np.concatenate([thermolysin, lysozyme]))
    assert result.main.solution.bravais.symbol == "tP" and len(result.main.members) == 60
    assert len(result.others) == 1
    assert result.others[0].solution.bravais.symbol == "hP"
    assert len(result.others[0].members) == 25


def test_too_few_indexed_images_is_a_clear_error():
    with pytest.raises(CellDeterminationError, match=r"only 4 images indexed cell-free \(< 10"):
        determine_cell(noisy_reduced_cells((79.1, 79.1, 38.4, 90, 90, 90), 4, seed=4))


def test_cells_that_do_not_agree_are_refused():
    rng = np.random.default_rng(5)
    cells = [niggli_cell(tuple(rng.uniform(30, 150, 3)) + (90.0, 90.0, 90.0)) for _ in range(30)]
    with pytest.raises(CellDeterminationError, match="do not agree"):
        determine_cell(cells)


def test_not_a_cell_is_named():
    with pytest.raises(CellDeterminationError, match="reduced cell 2 is not a cell"):
        determine_cell([(79, 79, 38, 90, 90, 90)] * 2 + [(np.nan, 1, 1, 90, 90, 90)] * 10)
