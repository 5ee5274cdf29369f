"""Cell-free indexing of a run's hits (``python -m kernels cell-index``): calibration, spot
finding and hit finding as in ``process``, then :func:`index_cell_free` on each hit's spots.
Writes ``cellfree.csv``, one row per lattice found, which ``python -m kernels cell`` reads, and
the indexed spots (``spots.h5``) with the run's detector (``run.geom``) for ``refine-geometry``."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import h5py
import numpy as np

from kernels.cell.determination import CellDeterminationError
from kernels.cell.fft_indexing import CellFreeError, CellFreeParams, index_cell_free
from kernels.cell.run_spots import SpotsCollector, run_detector, write_run_outputs
from kernels.crystal.geometry import pixel_to_s
from kernels.io.atomic import atomic_path
from kernels.io.runformat import open_run
from kernels.process import default_calibration
from kernels.stages.calibration import calibrate, load_calibration, plan_calibration
from kernels.stages.hitfinder import HitParams, is_hit
from kernels.stages.spotfinder import SpotParams, find_spots, plan_spotfinding

log = logging.getLogger(__name__)

CELLFREE_FILE = "cellfree.csv"
HITS_FILE = "hit_spots.h5"  # every hit's scattering vectors, for the pooled determination
CELL_COLUMNS = ("a", "b", "c", "alpha", "beta", "gamma")
COLUMNS = ("chunk", "event", "lattice", "n_spots", "n_indexed", "rms", *CELL_COLUMNS)


def index_run(run_dir, out_dir, calib_path=None, params: CellFreeParams = CellFreeParams()):
    """Index every hit of a run cell-free; returns (hits, lattices) and writes cellfree.csv,
    spots.h5 and run.geom."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, hits, hit_spots = [], 0, []
    with open_run(run_dir) as run:
        calib = load_calibration(calib_path or default_calibration(run.dir), run.geometry.shape)
        calibration_plan = plan_calibration(calib, run.geometry)
        spot_plan = plan_spotfinding(run.geometry, calib.mask, SpotParams())
        collector = SpotsCollector(run_detector(run.geometry))
        for c, e in run.events:
            spots = find_spots(calibrate(run.read_frame(c, e), calibration_plan), spot_plan)
            wavelength = run.wavelength(c, e)
            if not is_hit(len(spots), HitParams()) or not wavelength:
                continue
            hits += 1
            s = pixel_to_s(spots.col, spots.row, wavelength, run.geometry)
            hit_spots.append(s)
            try:
                lattices = index_cell_free(s, params)
            except CellFreeError as exc:
                log.debug("chunk %d event %d: %s", c, e, exc)
                continue
            for k, lat in enumerate(lattices):
                rows.append((c, e, k, len(s), lat.n_indexed, lat.rms, *lat.reduced_cell))
                collector.add(lat, s, spots.col, spots.row, wavelength)
    write_cellfree(out / CELLFREE_FILE, rows)
    write_hit_spots(out / HITS_FILE, hit_spots)
    write_run_outputs(collector, out)
    return hits, len(rows)


def write_cellfree(path: Path, rows) -> None:
    """The per-lattice table of reduced cells."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def read_cellfree(results_dirs) -> np.ndarray:
    """Reduced cells (n, 6) from the cellfree.csv of each results directory.

    Raises
    ------
    CellDeterminationError
        A directory without cellfree.csv (the message names it and how to make it).
    """
    cells = []
    for directory in results_dirs:
        path = Path(directory) / CELLFREE_FILE
        if not path.is_file():
            raise CellDeterminationError(
                f"{path} not found: run `python -m kernels cell-index --run ... --out {directory}`"
            )
        with open(path, newline="") as f:
            cells += [[float(row[k]) for k in CELL_COLUMNS] for row in csv.DictReader(f)]
    return np.array(cells, dtype=float).reshape(-1, 6)


def write_hit_spots(path: Path, spot_sets) -> None:
    """Every hit's scattering vectors (1/A): ``s`` (n, 3) concatenated, ``count`` per hit."""
    counts = np.array([len(s) for s in spot_sets], dtype=np.int64)
    s = np.concatenate(spot_sets) if spot_sets else np.zeros((0, 3))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["s"], f["count"] = s, counts


def read_hit_spots(results_dirs) -> list[np.ndarray] | None:
    """The hits' scattering vectors of every results directory (None: one has no hit file)."""
    spot_sets: list[np.ndarray] = []
    for directory in results_dirs:
        path = Path(directory) / HITS_FILE
        if not path.is_file():
            return None
        with h5py.File(path, "r") as f:
            s, counts = f["s"][:], f["count"][:]
        spot_sets += np.split(s, np.cumsum(counts)[:-1]) if len(counts) else []
    return spot_sets
