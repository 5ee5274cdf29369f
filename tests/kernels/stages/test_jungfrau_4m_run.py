"""Simulated stills on SwissFEL's Jungfrau 4M (the geometry in the photolyase stream: 8 modules,
each tilted 3 mrad and shifted 0.2 mm, at 100 mm: to 48 deg 2-theta) through ``process
--geometry`` and the merge, against the truth."""

from __future__ import annotations

import h5py
import numpy as np

from facility.beamline.panel_run import simulate_panel_run, tilted
from facility.beamline.simulate import SimulationParams
from kernels.__main__ import main
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.geom import read_geom
from kernels.io.geom_detector import to_detector
from kernels.io.readers.base import stacked
from kernels.io.reflections import read_integrated
from kernels.merging.cli import merge_results
from tests.kernels.realdata import JUNGFRAU_4M_STREAM, realdata, stream_geometry

# event 26 is the still whose adaptive integration estimated a 950 A domain and no mosaicity
# (the truth: 5000 A, 0.05 deg); before the merge took each image's excitation errors from the
# width its partiality was estimated with, that one still cost the merge 0.99 -> 0.96
IMAGES = 27
# issue 14: within 2 % of the flat detector's merged CC to truth on the same crystal and hits;
# flat at 27 hits (seed 8): 0.989 (0.992 at 40: bench/detectors_bench.py), so 0.98 x 0.989
MIN_CC_TRUTH = 0.969


def test_tilted_jungfrau_4m_stills_are_integrated_and_merged_within_2_percent_of_flat(tmp_path):
    geom = stream_geometry(realdata(*JUNGFRAU_4M_STREAM), tmp_path)
    detector = tilted(stacked(to_detector(read_geom(geom)), str(geom)), distance_mm=100.0)
    assert len(detector.panels) == 8 and detector.panels[0].shape == (514, 1030)
    params = SimulationParams(hit_rate=1.0)
    run = simulate_panel_run(tmp_path / "sim", detector, IMAGES, seed=8, params=params)
    geometry, out = tmp_path / "sim" / "detector.geom", tmp_path / "out"
    assert main(["process", "--run", str(run), "--geometry", str(geometry), "--out", str(out)]) == 0
    _, images, refl = read_integrated(out)
    with h5py.File(tmp_path / "sim" / "truth.h5") as f:
        truth_U = f["U"][()]
    symmetry = CrystalSymmetry.create(params.cell, params.space_group)
    assert len(images["U"]) == IMAGES
    for event, U in zip(images["event"], images["U"]):
        assert symmetry.orientation_difference_deg(U, truth_U[event]) < 0.03
    assert np.all(np.bincount(refl["panel"], minlength=8) > 50)  # every module contributes
    # the profile each still's partiality was estimated with, for the merge
    assert np.all(images["domain_size_a"] > 0) and np.all(images["mosaicity_deg"] >= 0)
    stats = merge_results([out], out / "merged.mtz", tmp_path / "sim" / "truth.mtz")
    assert stats["overall"]["cc_truth"] >= MIN_CC_TRUTH
