"""The multi-panel chain: a frame's panels as one image of panels separated by masked gaps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from facility.beamline.panel_run import tilted
from kernels.crystal.detector import from_flat
from kernels.crystal.geometry import default_geometry
from kernels.crystal.panel_image import PanelImage
from kernels.io.readers.base import stacked
from kernels.io.runformat import open_run
from kernels.process import default_calibration
from kernels.stages.calibration import Calibration, load_calibration
from kernels.stages.pipeline import ProcessingParams, Processor
from kernels.stages.spotfinder import SpotParams, find_spots, plan_spotfinding

WAVELENGTH = 1.3


def flat_as_panels(geometry):
    """The simulated flat detector's 16 panels as a stacked multi-panel detector."""
    return PanelImage(stacked(from_flat(geometry, split_panels=True), "simulated detector"))


def panel_stack(array, geometry):
    return np.stack([array[r0:r1, c0:c1] for r0, r1, c0, c1 in geometry.panels])


def tilted_detector():
    """The flat panels, each tilted by 5 mrad about its own axis and shifted ~0.2 mm."""
    return PanelImage(tilted(flat_as_panels(default_geometry()).detector, mrad=5.0))


def test_pixels_to_s_and_back_on_tilted_panels():
    image = tilted_detector()
    rng = np.random.default_rng(1)
    panel = rng.integers(0, image.n, 500)
    fs, ss = rng.uniform(0, 253, (2, 500))
    col, row = image.to_image(panel, fs, ss)
    s = image.pixel_to_s(col, row, WAVELENGTH)
    back_col, back_row = image.project(s, WAVELENGTH)
    assert np.abs(back_col - col).max() < 1e-6 and np.abs(back_row - row).max() < 1e-6
    onto_col, onto_row = image.project_onto(s, WAVELENGTH, panel)
    assert np.abs(onto_col - col).max() < 1e-6 and np.abs(onto_row - row).max() < 1e-6
    # a ray into no panel projects to NaN, not onto a neighbour
    col, row = image.project(np.array([[0.0, 0.0, 0.0]]), WAVELENGTH)
    assert np.isnan(col).all() and np.isnan(row).all()


def test_frame_of_the_wrong_shape_is_refused_by_name():
    image = flat_as_panels(default_geometry())
    with pytest.raises(ValueError, match=r"frame of shape \(15, 253, 253\) does not fit"):
        image.image(np.zeros((15, 253, 253)))


def test_no_spot_straddles_a_panel_gap():
    """A bright blob cut by the physical gap between two panels is found on each panel's own
    pixels, every centroid inside its panel."""
    image = flat_as_panels(default_geometry())
    frame = np.random.default_rng(2).poisson(1.0, (image.n, 253, 253)).astype(np.float32)
    rr, cc = np.mgrid[-3:4, -3:4]
    blob = 300 * np.exp(-(rr**2 + cc**2) / 2.0)
    frame[0, 250:253, 100:107] += blob[:3]  # bottom edge of panel 0
    frame[4, 0:4, 100:107] += blob[3:]  # top edge of panel 4, below it on the detector
    photons = image.image(frame)
    spots = find_spots(photons, plan_spotfinding(image, image.mask(), SpotParams()))
    panel, fs, ss = image.locate(spots.col, spots.row)
    assert {0, 4} <= set(panel.tolist())
    assert np.all((ss > 0) & (ss < 253) & (fs > 0) & (fs < 253))


def test_flat_run_processed_as_panels_gives_the_flat_results(small_run):
    """The simulated run's frames cut into their 16 panels and processed by the multi-panel
    chain give the flat chain's spots, orientations and reflections."""
    with open_run(small_run) as run:
        geometry = run.geometry
        calib = load_calibration(default_calibration(run.dir), geometry.shape)
        frames = [(run.read_frame(c, e), run.wavelength(c, e)) for c, e in run.events[:8]]
    image = flat_as_panels(geometry)
    as_panels = Calibration(
        *(image.image(panel_stack(a, geometry)) for a in (calib.pedestal, calib.gain)),
        image.image(panel_stack(calib.mask, geometry), fill=False),
    )
    flat = Processor(calib, geometry, ProcessingParams())
    panels = Processor(as_panels, image, ProcessingParams())
    compared = 0
    for raw, wavelength in frames:
        ours = panels.process(panel_stack(raw, geometry), wavelength=wavelength)
        theirs = flat.process(raw, wavelength=wavelength)
        assert ours.status == theirs.status
        if theirs.spots is not None:  # the same spots to 0.02 px (ring statistics' subsample
            # rows differ in the two layouts, so a threshold or two moves a little)
            panel, fs, ss = image.locate(ours.spots.col, ours.spots.row)
            r0, c0 = np.array(geometry.panels)[panel, 0], np.array(geometry.panels)[panel, 2]
            flat_xy = np.c_[c0 + fs - 0.5, r0 + ss - 0.5]
            distance, _ = cKDTree(flat_xy).query(np.c_[theirs.spots.col, theirs.spots.row])
            assert (distance < 0.02).mean() >= 0.97
        if theirs.status != "integrated":
            continue
        compared += 1
        assert panels.symmetry.orientation_difference_deg(ours.U, theirs.U) < 0.005
        assert ours.rmsd_px == pytest.approx(theirs.rmsd_px, abs=0.02)
        ref_o, ref_t = ours.reflections, theirs.reflections
        key_o, key_t = map(lambda r: {tuple(h): i for i, h in enumerate(r.hkl)}, (ref_o, ref_t))
        common = sorted(set(key_o) & set(key_t))
        # the flat chain also reads the neighbouring panel's pixels across its 4-pixel gaps
        # (background annuli, discs of predictions in a gap); the panel chain never does
        assert len(common) >= 0.94 * len(ref_t)
        io = ref_o.intensity[[key_o[h] for h in common]]
        it = ref_t.intensity[[key_t[h] for h in common]]
        assert np.corrcoef(io, it)[0, 1] > 0.9999
        assert np.median(io / it) == pytest.approx(1.0, abs=1e-3)
    assert compared >= 3
