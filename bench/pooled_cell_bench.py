"""The pooled cell determination beside the clustered per-image cells, on sparse simulated
stills of six Bravais lattices (as the real 5-HT2B stills: few spots on the lattice, many off).

Per lattice: N stills of the simulator's physics, each cut to K random spots of its lattice
plus M spurious ones (0.3 px noise). Both determinations run on the same stills: the per-image
cells (cell-free indexing, then clustering) and the pooled one (:mod:`kernels.cell.pooled`);
each line gives the lattice found, the worst length and angle error, stills in the cell and
seconds.

    PYTHONPATH=$PWD .venv/bin/python bench/pooled_cell_bench.py [--images 40] [--spots 15]
        [--spurious 10] [--lattices oC mC]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # one core, as a rank runs
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from kernels.cell.determination import (  # noqa: E402
    CellDeterminationError,
    DeterminationParams,
    determine_cell,
)
from kernels.cell.fft_indexing import CellFreeError, CellFreeParams, index_cell_free  # noqa: E402
from kernels.cell.pooled import determine_cell_pooled  # noqa: E402
from tests.kernels.cell.lattices import LATTICES  # noqa: E402
from tests.kernels.cell.stills import sparse_stills  # noqa: E402

DETERMINATION = DeterminationParams(min_images=5)


def clustered(stills):
    """The per-image route: each still indexed cell-free, the cells clustered."""
    cells = []
    for s in stills:
        try:
            cells.append(index_cell_free(s, CellFreeParams(min_indexed=8))[0].reduced_cell)
        except CellFreeError:
            pass
    return determine_cell(cells, DETERMINATION)


def line(route: str, symbol: str, determine, stills) -> str:
    """One route's result on one lattice's stills."""
    cell = np.array(LATTICES[symbol][0])
    started = time.perf_counter()
    try:
        main = determine(stills).main
    except CellDeterminationError as exc:
        return f"{symbol:>3} {route:>9}  refused: {exc}"
    seconds = time.perf_counter() - started
    found = main.solution
    length, angle = np.nan, np.nan
    if found.bravais.symbol == symbol:
        length = 100 * np.max(np.abs(np.array(found.cell[:3]) / cell[:3] - 1))
        angle = np.max(np.abs(np.array(found.cell[3:]) - cell[3:]))
    return (
        f"{symbol:>3} {route:>9} {found.bravais.symbol:>5} {length:8.3f} {angle:8.3f} "
        f"{len(main.members):5d} {seconds:7.1f}  {' '.join(f'{v:.2f}' for v in found.cell)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--spots", type=int, default=15, help="lattice spots kept per still")
    parser.add_argument("--spurious", type=int, default=10, help="spurious spots per still")
    parser.add_argument("--lattices", nargs="+", default=list(LATTICES))
    args = parser.parse_args()
    print(f"{args.images} stills, {args.spots} lattice + {args.spurious} spurious spots each")
    print("lat     route found  len %  ang deg  cell seconds  cell")
    for symbol in args.lattices:
        cell, space_group = LATTICES[symbol]
        stills = sparse_stills(cell, space_group, args.images, args.spots, args.spurious, seed=5)
        for route, determine in (("clustered", clustered), ("pooled", pooled)):
            print(line(route, symbol, determine, stills), flush=True)
    return 0


def pooled(stills):
    """The pooled route on the same stills."""
    return determine_cell_pooled(stills, determination=DETERMINATION)


if __name__ == "__main__":
    sys.exit(main())
