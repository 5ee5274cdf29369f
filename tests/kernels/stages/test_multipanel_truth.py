"""Simulated stills on tilted, shifted panels (CXI + .geom, as a facility writes them) through
``process --geometry``, against the simulator's truth; the same run under ``mpiexec`` gives the
single process's results."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy.spatial import cKDTree

from facility.beamline.panel_run import simulate_panel_run
from facility.beamline.simulate import SimulationParams
from kernels.__main__ import main
from kernels.crystal.panel_image import PanelImage
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.readers.select import open_frames
from kernels.io.reflections import read_integrated
from kernels.resultsdb import ResultsDB
from tests.kernels.crystal.test_panel_image import tilted_detector
from tests.kernels.driver.test_mpi_driver import fates

IMAGES = 6


@pytest.fixture(scope="module")
def tilted_files(tmp_path_factory):
    """(run folder, geometry, truth file, single-process output) of the tilted run."""
    root = tmp_path_factory.mktemp("tilted")
    run = simulate_panel_run(
        root, tilted_detector().detector, IMAGES, seed=4, params=SimulationParams(hit_rate=1.0)
    )
    geom, out = root / "detector.geom", root / "out"
    assert main(["process", "--run", str(run), "--geometry", str(geom), "--out", str(out)]) == 0
    return run, geom, root / "truth.h5", out


@pytest.fixture(scope="module")
def tilted_run(tilted_files):
    run, geom, truth_file, out = tilted_files
    with h5py.File(truth_file) as f:
        truth = {k: f[k][()] for k in ("hit", "U")} | {k: f["spots"][k][()] for k in f["spots"]}
    with open_frames([run], geom) as reader:
        layout = PanelImage(reader.detector)
    return read_integrated(out), truth, layout


def test_every_hit_indexed_at_its_true_orientation(tilted_run):
    (_, images, _), truth, _ = tilted_run
    symmetry = CrystalSymmetry.create((79.1, 79.1, 38.4, 90, 90, 90), "P 43 21 2")
    assert len(images["U"]) == IMAGES == truth["hit"].sum()
    for event, U in zip(images["event"], images["U"]):
        assert symmetry.orientation_difference_deg(U, truth["U"][event]) < 0.03


def test_intensities_on_the_panels_match_truth(tilted_run):
    (_, images, refl), truth, layout = tilted_run
    ours, theirs = [], []
    for i, event in enumerate(images["event"]):
        mine, true = refl["image"] == i, truth["event"] == event
        panel, fs, ss = refl["panel"][mine], refl["fs"][mine], refl["ss"][mine]
        np.testing.assert_allclose(
            layout.locate(refl["col"][mine], refl["row"][mine])[1:], (fs, ss)
        )
        # positions on the detector in mm: a match must be on the same panel, near the same pixel
        lab = layout.detector.lab_position(panel, fs, ss)
        true_lab = layout.detector.lab_position(
            truth["panel"][true], truth["fs"][true], truth["ss"][true]
        )
        distance, j = cKDTree(true_lab).query(lab)
        close = distance < 0.05  # mm, half a pixel
        ours.append(refl["intensity"][mine][close])
        theirs.append(truth["photons"][true][j[close]])
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    assert len(ours) > 0.9 * np.isin(truth["event"], images["event"]).sum()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99
    assert 0.97 < np.median(ours / theirs) < 1.04


def test_three_mpi_ranks_give_the_single_process_results(tilted_files, tmp_path, mpi_process):
    run, geom, _, single = tilted_files
    out, db = tmp_path / "out", f"sqlite:///{tmp_path / 'results.db'}"
    done = mpi_process(3, run, out, "--geometry", str(geom), "--db", db)
    assert done.returncode == 0, done.stderr
    assert fates(out) == fates(single)
    assert (out / "integrated.h5").read_bytes() == (single / "integrated.h5").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranks"] == 3 and summary["integrated"] == IMAGES
    results = ResultsDB(db)
    run_id = results.ensure_run(run.resolve().parent.parent.name, run.name)
    counts = results.image_counts(run_id, results.get_trial("default")["id"])
    assert (counts["images"], counts["indexed"]) == (IMAGES, IMAGES)


def test_each_image_s_equals_a_h_onto_its_reflections_panel_pixels(tilted_run):
    (_, images, refl), _, layout = tilted_run
    assert set(images["file"]) == {"r0001.cxi"}  # the source file of every image
    for i, (A, wavelength) in enumerate(zip(images["A"], images["wavelength"])):
        mine = refl["image"] == i
        s = refl["hkl"][mine] @ A.T
        panel, fs, ss = layout.detector.project(s, wavelength)
        np.testing.assert_array_equal(panel, refl["panel"][mine])
        np.testing.assert_allclose(
            np.c_[fs, ss], np.c_[refl["fs"][mine], refl["ss"][mine]], atol=1e-6
        )
