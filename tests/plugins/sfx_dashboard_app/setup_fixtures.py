"""A finished setup run's outputs, made by the kernels' own writers: ``cell.json`` and the
histograms of noisy tetragonal cells with a minority of orthorhombic ones, ``refined.geom``,
the refinement report and residual map of a modular detector with injected errors, and
``absences.json`` of a P 43 21 2 crystal's merge in P 4 2 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from kernels.__main__ import main
from kernels.cell.determination import determine_cell
from kernels.cell.report import write_report
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.geomrefine.spots import write_spots
from kernels.io.geom import write_geom
from kernels.io.geom_detector import from_detector
from kernels.io.mtz import write_merged_mtz
from kernels.resultsdb import ResultsDB
from tests.kernels.cell.test_absences import merged
from tests.kernels.cell.test_cell_determination import noisy_reduced_cells
from tests.kernels.geomrefine.synthetic import PIXEL, indexed_stills, modular_detector, with_errors

from .conftest import EVIL

LYSOZYME = (79.1, 79.1, 38.4, 90.0, 90.0, 90.0)
MINORITY = (60.0, 70.0, 80.0, 90.0, 90.0, 90.0)
SPACE_GROUP = "P 43 21 2"


def write_setup_outputs(folder: Path) -> dict:
    """The files ``sfx_setup`` downloads, in ``folder``; returns the two JSON reports.
    The first panel of the report is renamed to a hostile name (the page must escape it)."""
    folder.mkdir(parents=True)
    cells = np.vstack(
        [noisy_reduced_cells(LYSOZYME, 60, seed=1), noisy_reduced_cells(MINORITY, 15, seed=2)]
    )
    cell = write_report(determine_cell(list(cells)), folder)
    truth = modular_detector()
    write_geom(from_detector(with_errors(truth, seed=7, pixel_mm=PIXEL)), folder / "start.geom")
    write_spots(folder / "spots.h5", indexed_stills(truth, 12, seed=8))
    argv = ["refine-geometry", "--geometry", str(folder / "start.geom")]
    assert main([*argv, "--spots", str(folder / "spots.h5"), "--out", str(folder)]) == 0
    report = folder / "geometry_refinement.json"
    geometry = json.loads(report.read_text())
    geometry["panels_after"][0]["panel"] = geometry["panels_before"][0]["panel"] = EVIL
    report.write_text(json.dumps(geometry))
    hkl, intensity, sigma = merged(LYSOZYME, SPACE_GROUP, "P 4 2 2")
    mtz = write_merged_mtz(
        folder / "merged.mtz", CrystalSymmetry.create(LYSOZYME, "P 4 2 2"), hkl, intensity,
        sigma, hkl[:, 0] * 0 + 4,
    )  # fmt: skip
    argv = ["absences", "--cell", str(folder / "cell.json"), "--merged", str(mtz)]
    assert main([*argv, "--out", str(folder / "absences.json")]) == 0
    absences = json.loads((folder / "absences.json").read_text())
    return {"folder": folder, "cell": cell, "geometry": geometry, "absences": absences}


def register_setup(url: str, exp: Path, trial: str, outputs: dict) -> dict:
    """The outputs copied to ``<exp>/setup/<trial>`` and the trial they registered; its id and
    the reports."""
    shutil.copytree(outputs["folder"], exp / "setup" / trial)
    reports = {key: outputs[key] for key in ("cell", "geometry", "absences")}
    names = ("a", "b", "c", "alpha", "beta", "gamma")
    crystal = {**dict(zip(names, reports["cell"]["main"]["cell"])), "space_group": SPACE_GROUP}
    with ResultsDB(url) as db:
        trial_id = db.ensure_trial(trial, {"crystal": crystal})
    return {"trial_id": trial_id, **reports}
