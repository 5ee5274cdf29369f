"""The unit cell of ``cell-index`` results: the clustered per-image cells, or the pooled
determination (:mod:`kernels.cell.pooled`) when they do not agree.

Per-image cells suffice when a still's spots fix its whole lattice (the simulated lattices, the
real lysozyme and photolyase stills); when the largest cluster is refused or holds less than
`weak_cluster` of the indexed images, the hits' spots (``hit_spots.h5``) are pooled instead.
"""

from __future__ import annotations

from kernels.cell.determination import CellDeterminationError, CellResult, determine_cell
from kernels.cell.pooled import determine_cell_pooled
from kernels.cell.run_index import HITS_FILE, read_cellfree, read_hit_spots

WEAK_CLUSTER = 0.5  # of the indexed images: a smaller dominant cluster is no agreement


def cell_of_results(results_dirs, method: str = "auto") -> tuple[CellResult, str]:
    """The cell and how it was found ("clustered" or "pooled").

    method : "auto" (pooled when the clustered cell is refused or weak and the hits' spots are
    there), "clustered", "pooled".

    Raises
    ------
    CellDeterminationError
        The chosen way gives no cell, or "pooled" without the hits' spot files (named).
    """
    if method == "pooled":
        return determine_cell_pooled(_hit_spots(results_dirs)), "pooled"
    try:
        result = determine_cell(read_cellfree(results_dirs))
    except CellDeterminationError:
        if method == "clustered" or read_hit_spots(results_dirs) is None:
            raise
        return determine_cell_pooled(_hit_spots(results_dirs)), "pooled"
    weak = len(result.main.members) < WEAK_CLUSTER * result.n_cells
    if method == "clustered" or not weak or read_hit_spots(results_dirs) is None:
        return result, "clustered"
    return determine_cell_pooled(_hit_spots(results_dirs)), "pooled"


def _hit_spots(results_dirs):
    spot_sets = read_hit_spots(results_dirs)
    if spot_sets is None:
        raise CellDeterminationError(
            f"a results directory has no {HITS_FILE} to pool: rerun `python -m kernels "
            "cell-index` on it"
        )
    return spot_sets
