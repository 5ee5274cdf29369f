"""Cell-free indexing and cell determination on simulated stills of six Bravais lattices.

Per lattice: N stills (the simulator's physics, spots at their true positions with 0.3 px
noise and 3 spurious spots each) indexed cell-free (ms per hit, share indexed), then the cell
determined from all reduced cells (seconds), against the true cell. The issue's goal: the right
lattice, lengths within 0.3 %, angles within 0.3 deg, >= 70 % indexed, determination <= 5 min.

    PYTHONPATH=$PWD .venv/bin/python bench/cell_bench.py [--images 1000] [--lattices tP mC]
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

from kernels.cell.determination import determine_cell  # noqa: E402
from kernels.cell.fft_indexing import CellFreeError, index_cell_free  # noqa: E402
from tests.kernels.cell.lattices import LATTICES  # noqa: E402
from tests.kernels.cell.stills import simulate_stills  # noqa: E402


def bench_lattice(symbol: str, images: int) -> str:
    """One lattice's line of the table."""
    cell, space_group = LATTICES[symbol]
    stills = simulate_stills(cell, space_group, images, seed=21)
    started = time.perf_counter()
    cells = []
    for s, _ in stills:
        try:
            cells.append(index_cell_free(s)[0].reduced_cell)
        except CellFreeError:
            pass
    per_hit = (time.perf_counter() - started) / images
    started = time.perf_counter()
    result = determine_cell(cells)
    seconds = time.perf_counter() - started
    found = result.main.solution
    length = 100 * np.max(np.abs(np.array(found.cell[:3]) / cell[:3] - 1))
    angle = np.max(np.abs(np.array(found.cell[3:]) - cell[3:]))
    ok = found.bravais.symbol == symbol and length < 0.3 and angle < 0.3
    ok &= len(cells) >= 0.7 * images and seconds <= 300
    return (
        f"{symbol:>3} {found.bravais.symbol:>5} {100 * len(cells) / images:7.1f} "
        f"{1e3 * per_hit:8.0f} {seconds:8.1f} {length:8.3f} {angle:8.3f}  "
        f"{' '.join(f'{v:.2f}' for v in found.cell)}  {'ok' if ok else 'FAIL'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="stills per lattice")
    parser.add_argument("--lattices", nargs="+", default=list(LATTICES), choices=list(LATTICES))
    args = parser.parse_args()
    print(f"{args.images} simulated stills per lattice, one core")
    print("true found %index ms/hit cell_s len_err% ang_err  conventional cell")
    for symbol in args.lattices:
        print(bench_lattice(symbol, args.images), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
