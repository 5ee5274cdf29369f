"""Cell-free indexing time per hit: ours beside DIALS's ``dials.index`` (fft1d) on the same spots.

Per lattice: N simulated stills (tests/kernels/cell/stills.py: the simulator's physics, 0.3 px
noise, 3 spurious spots) as spot lists. Ours: ``index_cell_free`` on each still's spots. DIALS
(Debian ``dials``, /usr/bin/python3): the same centroids as a strong-spot table on blank stills
of the same detector (bench/dials_index_stills.py), then one ``dials.index
indexing.method=fft1d`` over all stills, no known symmetry, one process; its start-up is taken
out by timing a 1-still run too. Beside: the share of stills indexed, and the share whose
reduced cell is the true lattice's within 1 % (largest error of a, b, c) with their median
error (%): an indexer may "index" a still with a supercell.

    PYTHONPATH=$PWD .venv/bin/python bench/cell_dials_bench.py [--images 30] [--lattices tP mC]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # one core, as a rank runs
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gemmi  # noqa: E402
import numpy as np  # noqa: E402

from bench.dials_bench import SYSTEM_PYTHON, ensure_dials  # noqa: E402
from facility.beamline.simulate import SimulationParams  # noqa: E402
from kernels.cell.fft_indexing import CellFreeError, index_cell_free  # noqa: E402
from kernels.crystal.geometry import default_geometry, project_to_detector  # noqa: E402
from tests.kernels.cell.lattices import LATTICES  # noqa: E402
from tests.kernels.cell.stills import simulate_stills  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_CELL = 250.0  # A, both indexers


def spot_lists(symbol: str, images: int):
    """The lattice's stills as (col, row, image) spot arrays, wavelength, s per still."""
    cell, space_group = LATTICES[symbol]
    wavelength = SimulationParams(cell=cell, space_group=space_group).wavelength
    geometry = default_geometry()
    stills = [s for s, _ in simulate_stills(cell, space_group, images, seed=21)]
    pixels = [project_to_detector(s, wavelength, geometry) for s in stills]
    col = np.concatenate([c for c, _ in pixels])
    row = np.concatenate([r for _, r in pixels])
    image = np.concatenate([np.full(len(s), i) for i, s in enumerate(stills)])
    return col, row, image, wavelength, stills


def run_ours(stills) -> tuple[float, list]:
    """Seconds per still and each still's reduced cell (None: not indexed)."""
    started = time.perf_counter()
    cells = []
    for s in stills:
        try:
            cells.append(index_cell_free(s)[0].reduced_cell)
        except CellFreeError:
            cells.append(None)
    return (time.perf_counter() - started) / len(stills), cells


def dials_index(work: Path, col, row, image, wavelength) -> tuple[float, list]:
    """dials.index over these stills, each on its own: (seconds, reduced cells found)."""
    work.mkdir(parents=True)
    g = default_geometry()
    geometry = [g.pixel_size_mm, g.distance_mm, g.beam_x, g.beam_y, *g.shape]
    np.savez(work / "spots.npz", col=col, row=row, image=image, wavelength=wavelength,
             geometry=geometry)  # fmt: skip
    subprocess.run(
        [SYSTEM_PYTHON, str(HERE / "dials_index_stills.py"), str(work / "spots.npz"), str(work)],
        check=True,
    )
    ext = work / "pythonpath"
    ext.mkdir(exist_ok=True)
    (ext / "xfel_mono_sim_ext.py").write_text("")  # stills indexing silently fails without it
    # check=False: dials.index exits 1 when no still indexes
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PYTHONPATH=str(ext), OMP_NUM_THREADS="1")
    started = time.perf_counter()
    subprocess.run(
        ["dials.index", "imported.expt", "strong.refl", "indexing.method=fft1d",
         f"indexing.max_cell={MAX_CELL}", "indexing.nproc=1", "joint_indexing=False"],
        cwd=work, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if not (work / "indexed.expt").exists():
        return seconds, []
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; from dxtbx.model.experiment_list import "
         "ExperimentListFactory as F\nfor c in F.from_json_file(sys.argv[1], check_format=False)"
         ".crystals(): print(*c.get_unit_cell().niggli_cell().parameters())",
         str(work / "indexed.expt")],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return seconds, [tuple(map(float, line.split())) for line in probe.stdout.splitlines()]


def cell_errors(cells, symbol: str) -> np.ndarray:
    """Per indexed still, the largest relative error (%) of its reduced a, b, c against the
    true lattice's reduced primitive cell (a supercell or a wrong cell: tens of %)."""
    cell, space_group = LATTICES[symbol]
    gv = gemmi.GruberVector(gemmi.UnitCell(*cell), gemmi.SpaceGroup(space_group).centring_type())
    gv.niggli_reduce()
    truth = np.array(gv.cell_parameters()[:3])
    found = np.array([c[:3] for c in cells if c is not None]).reshape(-1, 3)
    return 100 * np.max(np.abs(found / truth - 1), axis=1)


def right_cells(cells, symbol: str, images: int) -> str:
    """'share of the stills with the right reduced cell (within 1 %), median error of those'."""
    errors = cell_errors(cells, symbol)
    right = errors[errors < 1.0]
    median = f"{np.median(right):6.3f}" if len(right) else "   nan"
    return f"{100 * len(right) / images:7.1f} {median}"


def bench_lattice(symbol: str, images: int, work: Path) -> str:
    col, row, image, wavelength, stills = spot_lists(symbol, images)
    per_still, cells = run_ours(stills)
    indexed = sum(c is not None for c in cells)
    all_s, dials_cells = dials_index(work / symbol, col, row, image, wavelength)
    one = image == 0
    one_s, _ = dials_index(work / f"{symbol}_one", col[one], row[one], image[one], wavelength)
    dials_per_still = (all_s - one_s) / (images - 1)
    return (
        f"{symbol:>3} {images:6d} {1e3 * per_still:8.0f} {1e3 * dials_per_still:8.0f} "
        f"{dials_per_still / per_still:6.1f} {100 * indexed / images:7.1f} "
        f"{100 * len(dials_cells) / images:7.1f} {right_cells(cells, symbol, images)} "
        f"{right_cells(dials_cells, symbol, images)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30, help="stills per lattice (>= 2)")
    parser.add_argument("--lattices", nargs="+", default=list(LATTICES), choices=list(LATTICES))
    args = parser.parse_args()
    ensure_dials()
    work = Path(tempfile.mkdtemp(prefix="cell_dials_bench_"))
    print(f"{args.images} simulated stills per lattice, one core each; load {os.getloadavg()}")
    print("lat stills  ours_ms dials_ms  ratio  ours_% dials_%  right%   err%  right%   err%")
    print("                                     indexed          ours (<1 %)   DIALS (<1 %)")
    for symbol in args.lattices:
        print(bench_lattice(symbol, args.images, work), flush=True)
    print(f"load {os.getloadavg()}")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
