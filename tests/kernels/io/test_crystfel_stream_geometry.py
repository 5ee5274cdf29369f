"""A real CrystFEL stream (SwissFEL Alvra, Jungfrau 4M): its own geometry, read by us, puts
CrystFEL's solutions where CrystFEL predicted them, and its peaks index with our indexer."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kernels.crystal.detector import lab_to_s
from kernels.indexing import IndexingParams, index_s, plan_indexing
from kernels.io.geom import read_geom
from kernels.io.geom_detector import to_detector
from kernels.stages.ewald_refinement import refine_on_sphere
from kernels.symmetry import CrystalSymmetry
from tests.kernels.realdata import realdata

PLANCK_EV_A = 12398.419843


def table(text: str, start: str, end: str) -> list[list[str]]:
    body = text.split(start, 1)[1].split(end, 1)[0]
    return [line.split() for line in body.splitlines()[2:] if line.strip()]  # after the header


def crystals(stream: str):
    """(wavelength, A (1/A, columns a* b* c*), det_shift mm, peaks, reflections) per crystal."""
    for chunk in stream.split("----- Begin chunk -----")[1:]:
        if "--- Begin crystal" not in chunk:
            continue
        energy = float(re.search(r"photon_energy_eV = (\S+)", chunk).group(1))
        crystal = chunk.split("--- Begin crystal", 1)[1]
        A = (
            np.array(
                [
                    [float(v) for v in re.search(rf"{n}star = (\S+) (\S+) (\S+)", crystal).groups()]
                    for n in "abc"
                ]
            ).T
            / 10.0
        )  # nm^-1 -> A^-1
        shift = [float(v) for v in re.search(r"det_shift x = (\S+) y = (\S+) mm", crystal).groups()]
        peaks = table(chunk, "Peaks from peak search", "End of peak list")
        reflections = table(crystal, "Reflections measured after indexing", "End of reflections")
        yield PLANCK_EV_A / energy, A, shift, peaks, reflections


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    path = realdata("crystfel_streams", "photolyase_swissfel_alvra_run19.stream")
    text = path.read_text()
    geom_text = text.split("----- Begin geometry file -----\n")[1].split("----- End geometry file")[
        0
    ]
    geom_path = tmp_path_factory.mktemp("stream") / "alvra_jf4m.geom"
    geom_path.write_text(geom_text)
    return to_detector(read_geom(geom_path)), list(crystals(text))


def on_panels(detector, shift, fs, ss, names):
    moved = detector.moved("rigid_group_collection_myrg", np.eye(3), (*shift, 0.0))
    idx = [moved.panel_index(n) for n in names]
    fs0 = np.array([moved.panels[i].fs0 for i in idx])
    ss0 = np.array([moved.panels[i].ss0 for i in idx])
    return moved, idx, fs - fs0, ss - ss0


def test_crystfel_solutions_land_on_crystfel_predictions(stream):
    detector, found = stream
    assert len(detector.panels) == 8 and len(found) == 10
    for wavelength, A, shift, _, reflections in found:
        hkl = np.array([[int(v) for v in r[:3]] for r in reflections])
        fs, ss = (np.array([float(r[k]) for r in reflections]) for k in (7, 8))
        moved, idx, fs_local, ss_local = on_panels(
            detector, shift, fs, ss, [r[9] for r in reflections]
        )
        panel, fs_ours, ss_ours = moved.project(hkl @ A.T, wavelength)
        assert np.array_equal(panel, idx)
        # the stream prints positions to 0.1 px: 0.04 px rms is its rounding
        rms = np.sqrt(np.mean((fs_ours - fs_local) ** 2 + (ss_ours - ss_local) ** 2))
        assert rms < 0.06


def test_stream_peaks_index_near_crystfel(stream):
    detector, found = stream
    symmetry = CrystalSymmetry.create((70.20, 117.76, 170.47, 90, 90, 90), "P 2 2 2")
    plan = plan_indexing(
        symmetry.B, symmetry.lattice_rotations, IndexingParams(max_difference=0.06, min_indexed=8)
    )
    errors = []
    for wavelength, A, shift, peaks, _ in found:
        fs, ss = (np.array([float(r[k]) for r in peaks]) for k in (0, 1))
        moved, idx, fs_local, ss_local = on_panels(detector, shift, fs, ss, [r[4] for r in peaks])
        s = lab_to_s(moved.lab_position(idx, fs_local, ss_local), wavelength)
        solution = index_s(s, plan)
        used = solution.indexed
        fit = refine_on_sphere(s[used], solution.hkl[used], solution.U, symmetry, wavelength)
        u, _, vt = np.linalg.svd(A @ np.linalg.inv(symmetry.B))
        errors.append(symmetry.orientation_difference_deg(fit.U, u @ vt))
    # 15-77 peaks per crystal; CrystFEL refined with its own profile model: median 0.23 deg
    assert len(errors) == 10 and np.median(errors) < 0.3 and max(errors) < 0.5
