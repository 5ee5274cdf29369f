"""Simulated stills on SwissFEL's Jungfrau 4M (the geometry in the photolyase stream: 8 modules,
each tilted 3 mrad and shifted 0.2 mm) through ``process --geometry``, against the truth."""

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
from tests.kernels.realdata import JUNGFRAU_4M_STREAM, realdata, stream_geometry

IMAGES = 3


def test_tilted_jungfrau_4m_stills_are_integrated_at_their_true_orientation(tmp_path):
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
