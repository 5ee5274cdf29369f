"""150 real CSPAD stills (LCLS LD91 lysozyme) indexed from DIALS's observed spot lists."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kernels.crystal.detector import lab_to_s
from kernels.crystal.dials_frame import detector_from_dials
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.stages.ewald_refinement import onto_ewald_sphere, refine_on_sphere
from kernels.stages.indexing import IndexingError, IndexingParams, index_s, plan_indexing
from tests.kernels.realdata import realdata


@pytest.fixture(scope="module")
def stills():
    path = realdata("cspad_lysozyme_spots", "lysozyme_LD91_0-149.h5")
    with h5py.File(path) as f:
        panels = f["detector_panels"]
        detector = detector_from_dials(
            panels["origin_mm"][()],
            panels["fast_axis"][()],
            panels["slow_axis"][()],
            float(panels.attrs["pixel_size_mm"]),
            panels.attrs["image_size_fs_ss"],
        )
        spots = {k: f["reflections"][k][()] for k in f["reflections"]}
        return detector, spots, f["A_sfxflow"][()], f["unit_cell"][()], f["wavelength_A"][()]


def test_spot_lab_positions_follow_from_the_panels(stills):
    detector, spots, *_ = stills
    fs, ss = spots["fs_ss_obs_px"].T
    ours = detector.lab_position(spots["panel"], fs, ss)
    # DIALS's mm positions add a parallax correction growing with the radius (<= 0.05 mm)
    assert np.abs(ours - spots["lab_mm_obs_sfxflow"]).max() < 0.06


def test_onto_ewald_sphere_keeps_length_and_lands_on_the_sphere():
    r = np.random.default_rng(0).normal(scale=0.2, size=(100, 3))
    on = onto_ewald_sphere(r, 1.3)
    assert np.allclose(np.linalg.norm(on, axis=1), np.linalg.norm(r, axis=1))
    assert np.allclose(np.linalg.norm(on + [0, 0, 1 / 1.3], axis=1), 1 / 1.3)


def test_real_stills_index_with_dials_orientations(stills):
    detector, spots, A_ref, cells, wavelengths = stills
    symmetry = CrystalSymmetry.create(tuple(cells.mean(axis=0)), "P 43 21 2")
    # real stills have 10-93 spots far apart: longer difference vectors, fewer spots needed
    params = IndexingParams(max_difference=0.1, min_indexed=10)
    plan = plan_indexing(symmetry.B, symmetry.lattice_rotations, params)
    lab = detector.lab_position(spots["panel"], *spots["fs_ss_obs_px"].T)
    errors = []
    for i in range(len(A_ref)):
        chosen = spots["expt_id"] == i
        s = lab_to_s(lab[chosen], wavelengths[i])
        try:
            solution = index_s(s, plan)
        except IndexingError:
            continue
        used = solution.indexed
        fit = refine_on_sphere(s[used], solution.hkl[used], solution.U, symmetry, wavelengths[i])
        U_ref = A_ref[i] @ np.linalg.inv(CrystalSymmetry.create(tuple(cells[i]), "P 1").B)
        u, _, vt = np.linalg.svd(U_ref)
        errors.append(symmetry.orientation_difference_deg(fit.U, u @ vt))
    rate, median = len(errors) / len(A_ref), float(np.median(errors))
    print(f"indexed {len(errors)}/{len(A_ref)}; orientation vs DIALS median {median:.4f} deg")
    assert rate >= 0.95 and median < 0.05
