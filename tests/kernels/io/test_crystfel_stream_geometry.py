"""Real CrystFEL streams (SwissFEL Alvra Jungfrau 4M; LCLS CXI CSPAD): their own geometry, read
by us, puts CrystFEL's solutions where CrystFEL predicted them, and their peaks index with ours."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kernels.crystal.detector import Detector, lab_to_s
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.geom import read_geom
from kernels.io.geom_detector import to_detector
from kernels.stages.ewald_refinement import refine_on_sphere
from kernels.stages.indexing import IndexingError, IndexingParams, index_s, plan_indexing
from tests.kernels.realdata import realdata, stream_geometry

PLANCK_EV_A = 12398.419843


def table(text: str, start: str, end: str) -> list[list[str]]:
    body = text.split(start, 1)[1].split(end, 1)[0]
    return [line.split() for line in body.splitlines()[2:] if line.strip()]  # after the header


STREAMS = ["photolyase_swissfel_alvra_run19.stream", "5HT2B_lcls_cxi_xgandalf.stream"]
# the streams' target cells (5HT2B's from its header; C-centred: h + k odd is no lattice point)
TARGETS = {
    STREAMS[0]: ((70.20, 117.76, 170.47, 90, 90, 90), "P 2 2 2"),
    STREAMS[1]: ((61.40, 122.60, 168.00, 90, 90, 90), "C 2 2 21"),
}


def number(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def crystals(stream: str):
    """Per crystal: wavelength, A (1/A, columns a* b* c*), det_shift (mm), encoder clen (m or
    None), peaks, reflections."""
    for chunk in stream.split("----- Begin chunk -----")[1:]:
        if "--- Begin crystal" not in chunk:
            continue
        energy = number(r"photon_energy_eV = (\S+)", chunk)
        encoder = number(r"hdf5/LCLS/detector0-EncoderValue = (\S+)", chunk)
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
        clen = None if encoder is None else encoder * 1e-3  # LCLS encoder in mm
        yield PLANCK_EV_A / energy, A, shift, clen, peaks, reflections


@pytest.fixture(scope="module", params=STREAMS)
def stream(request, tmp_path_factory):
    path = realdata("crystfel_streams", request.param)
    geom_path = stream_geometry(path, tmp_path_factory.mktemp("stream"))
    return request.param, read_geom(geom_path), list(crystals(path.read_text()))


def on_panels(geom, clen, shift, fs, ss, names):
    """The crystal's detector (its camera length and det_shift) and the spots' panel coordinates."""
    detector = to_detector(geom, clen_m=clen)
    moved = Detector(detector.panels, {"all": tuple(p.name for p in detector.panels)})
    moved = moved.moved("all", np.eye(3), (*shift, 0.0))
    idx = [moved.panel_index(n) for n in names]
    fs0 = np.array([moved.panels[i].fs0 for i in idx])
    ss0 = np.array([moved.panels[i].ss0 for i in idx])
    return moved, idx, fs - fs0, ss - ss0


def test_crystfel_solutions_land_on_crystfel_predictions(stream):
    name, geom, found = stream
    assert len(found) == {"photolyase_swissfel_alvra_run19.stream": 10}.get(name, 32)
    exact = 0
    for wavelength, A, shift, clen, _, reflections in found:
        hkl = np.array([[int(v) for v in r[:3]] for r in reflections])
        fs, ss = (np.array([float(r[k]) for r in reflections]) for k in (7, 8))
        moved, idx, fs_local, ss_local = on_panels(
            geom, clen, shift, fs, ss, [r[9] for r in reflections]
        )
        panel, fs_ours, ss_ours = moved.project(hkl @ A.T, wavelength)
        assert np.array_equal(panel, idx)
        d_fs, d_ss = fs_ours - fs_local, ss_ours - ss_local
        # the stream prints positions to 0.1 px: 0.04 px rms is its rounding
        exact += np.sqrt(np.mean(d_fs**2 + d_ss**2)) < 0.06
        # one 5HT2B crystal (2 indexing tries) sits 0.36 px off as a whole: a det_shift other
        # than the one printed; its spread about that offset is still the rounding
        offset = moved.lab_position(panel, fs_ours, ss_ours) - moved.lab_position(
            idx, fs_local, ss_local
        )
        spread = np.sqrt(np.mean(np.sum((offset - offset.mean(axis=0)) ** 2, axis=1)))
        assert spread / moved.panels[0].pixel_size_mm < 0.06
    assert exact >= len(found) - 1


def test_stream_peaks_index_near_crystfel(stream):
    """Our known-cell indexer on the stream's peaks lands on CrystFEL's orientations. For the
    C-centred 5HT2B (10-25 of 14-47 peaks on its lattice) the plan's centring keeps spots off
    h + k odd points, where 6 of 32 crystals landed 30-94 deg away without it."""
    name, geom, found = stream
    symmetry = CrystalSymmetry.create(*TARGETS[name])
    plan = plan_indexing(
        symmetry.B,
        symmetry.lattice_rotations,
        IndexingParams(max_difference=0.06, min_indexed=8),
        symmetry.centring_vectors,
    )
    errors, about_beam = [], []
    for wavelength, A, shift, clen, peaks, _ in found:
        fs, ss = (np.array([float(r[k]) for r in peaks]) for k in (0, 1))
        moved, idx, fs_local, ss_local = on_panels(geom, clen, shift, fs, ss, [r[4] for r in peaks])
        s = lab_to_s(moved.lab_position(idx, fs_local, ss_local), wavelength)
        try:
            solution = index_s(s, plan)
        except IndexingError:
            continue
        used = solution.indexed
        phase = solution.hkl[used] @ symmetry.centring_vectors.T
        assert np.allclose(phase, np.rint(phase))  # on the centred lattice's points only
        fit = refine_on_sphere(s[used], solution.hkl[used], solution.U, symmetry, wavelength)
        u, _, vt = np.linalg.svd(A @ np.linalg.inv(symmetry.B))
        errors.append(symmetry.orientation_difference_deg(fit.U, u @ vt))
        about_beam.append(beam_axis_difference_deg(symmetry, fit.U, u @ vt))
    print(
        f"{name}: {len(errors)}/{len(found)} indexed, median {np.median(errors):.3f} deg, "
        f"about the beam at most {max(about_beam):.3f} deg"
    )
    if name == STREAMS[0]:
        # 15-77 peaks per crystal; CrystFEL refined with its own profile model: median 0.23 deg
        assert len(errors) == len(found) and np.median(errors) < 0.3
    else:
        # one crystal's 14 peaks give no triplet; the rest differ from CrystFEL mostly about
        # axes across the beam, which a still's few spots barely fix
        assert len(errors) >= len(found) - 1 and np.median(errors) < 1.0
        assert max(about_beam) < 0.5


def beam_axis_difference_deg(symmetry: CrystalSymmetry, U: np.ndarray, U_other: np.ndarray):
    """The beam-axis (z) component of the smallest rotation between two orientations, deg."""
    B, Binv = symmetry.B, np.linalg.inv(symmetry.B)
    turns = [
        Rotation.from_matrix(U @ B @ R.T @ Binv @ U_other.T) for R in symmetry.lattice_rotations
    ]
    return float(abs(np.degrees(min(turns, key=lambda r: r.magnitude()).as_rotvec()[2])))
