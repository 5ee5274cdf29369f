"""Indexing and refinement against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.crystal.geometry import pixel_to_s
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.reflections import read_integrated
from kernels.io.runformat import open_run
from kernels.stages.calibration import load_calibration
from kernels.stages.indexing import IndexingError, index_still, plan_indexing
from kernels.stages.pipeline import ParamsError, ProcessingParams, Processor
from kernels.stages.refinement import (
    RefinementError,
    RefinementParams,
    refine_orientation,
    small_rotation,
)
from tests.kernels.ground_truth import event_numbers, read_images, read_truth

LYSOZYME = CrystalSymmetry.create((79.1, 79.1, 38.4, 90, 90, 90), "P 43 21 2")


def orientation_error_deg(U, U_true, symmetry: CrystalSymmetry) -> float:
    return symmetry.orientation_difference_deg(U, U_true)


@pytest.fixture(scope="module")
def hits(lysozyme):
    """(photons-free) spots, wavelength and true U of the first 25 true hits of the run."""
    exp, _, _ = lysozyme
    truth = read_truth(exp)
    with open_run(exp / "runs" / "r0001") as run:
        calib = load_calibration(exp / "calib" / "calibration.h5", run.geometry.shape)
        processor = Processor(calib, run.geometry)
        found = []
        for n, (c, e) in enumerate(run.events):
            if truth["hit"][n]:
                r = processor.process(run.read_frame(c, e), c, e, wavelength=run.wavelength(c, e))
                found.append((r.spots, r.wavelength, truth["U"][n]))
            if len(found) == 25:
                break
        return found, run.geometry


def test_true_hits_indexed_with_accurate_orientation(lysozyme):
    exp, out, _ = lysozyme
    truth = read_truth(exp)
    rows = read_images(out)
    events = event_numbers(rows)
    indexed = np.array([r["status"] in ("indexed", "refined", "integrated") for r in rows])
    true_hit = truth["hit"][events]
    assert true_hit.sum() > 80
    assert indexed[true_hit].mean() >= 0.95
    assert not indexed[~true_hit].any(), "a miss must never get an indexing solution"
    attrs, images, _ = read_integrated(out)
    errors = [
        orientation_error_deg(U, truth["U"][c * 100 + e], LYSOZYME)
        for c, e, U in zip(images["chunk"], images["event"], images["U"])
    ]
    assert len(errors) >= 0.95 * true_hit.sum()
    assert np.median(errors) < 0.1
    assert np.max(errors) < 0.3


def test_spurious_spots_do_not_change_the_solution(hits):
    found, geometry = hits
    plan = plan_indexing(LYSOZYME.B, LYSOZYME.lattice_rotations)
    rng = np.random.default_rng(0)
    for spots, wavelength, U_true in found[:8]:
        n_fake = len(spots) // 3  # 25 % of the spots are junk
        col = np.concatenate([spots.col, rng.uniform(20, 1000, n_fake)])
        row = np.concatenate([spots.row, rng.uniform(20, 1000, n_fake)])
        solution = index_still(col, row, wavelength, geometry, plan)
        assert orientation_error_deg(solution.U, U_true, LYSOZYME) < 0.15
        assert solution.indexed[: len(spots)].mean() > 0.9
        assert solution.indexed[len(spots) :].mean() < 0.2


def test_wrong_cell_gives_no_solution(hits):
    found, geometry = hits
    wrong = CrystalSymmetry.create((61.0, 72.0, 45.0, 90, 90, 90), "P 21 21 21")
    plan = plan_indexing(wrong.B, wrong.lattice_rotations)
    for spots, wavelength, _ in found[:10]:
        with pytest.raises(IndexingError, match="target cell indexes at most"):
            index_still(spots.col, spots.row, wavelength, geometry, plan)


def test_too_few_spots_named():
    plan = plan_indexing(LYSOZYME.B, LYSOZYME.lattice_rotations)
    from kernels.crystal.geometry import default_geometry

    with pytest.raises(IndexingError, match="3 spots < 12"):
        index_still(np.array([1.0, 2, 3]), np.array([1.0, 2, 3]), 1.3, default_geometry(), plan)


def test_refinement_recovers_a_perturbed_orientation(hits):
    found, geometry = hits
    plan = plan_indexing(LYSOZYME.B, LYSOZYME.lattice_rotations)
    for spots, wavelength, U_true in found[:5]:
        solution = index_still(spots.col, spots.row, wavelength, geometry, plan)
        on = solution.indexed
        start = small_rotation(np.radians([0.3, -0.2, 0.25])) @ solution.U
        assert orientation_error_deg(start, U_true, LYSOZYME) > 0.3
        refined = refine_orientation(
            start,
            LYSOZYME,
            solution.hkl[on],
            spots.col[on],
            spots.row[on],
            spots.intensity[on],
            wavelength,
            geometry,
        )
        assert orientation_error_deg(refined.U, U_true, LYSOZYME) < 0.08
        assert refined.rmsd_px < 0.8


def test_cell_refinement_recovers_the_true_cell(hits):
    found, geometry = hits
    off = CrystalSymmetry.create((79.7, 79.7, 38.15, 90, 90, 90), "P 43 21 2")  # +0.8 %, -0.7 %
    plan = plan_indexing(off.B, off.lattice_rotations)
    for spots, wavelength, U_true in found[:5]:
        solution = index_still(spots.col, spots.row, wavelength, geometry, plan)
        on = solution.indexed
        args = (
            solution.U,
            off,
            solution.hkl[on],
            spots.col[on],
            spots.row[on],
            spots.intensity[on],
            wavelength,
            geometry,
        )
        with pytest.raises(RefinementError, match="rms spot residual"):
            refine_orientation(*args)  # orientation alone cannot fit a wrong cell
        refined = refine_orientation(*args, RefinementParams(refine_cell=1))
        assert refined.cell[0] == refined.cell[1]  # tetragonal: a = b stays tied
        assert abs(refined.cell[0] - 79.1) < 0.05 and abs(refined.cell[2] - 38.4) < 0.05
        assert refined.cell[3:] == (90.0, 90.0, 90.0)
        assert orientation_error_deg(refined.U, U_true, LYSOZYME) < 0.08
        with pytest.raises(RefinementError, match=r"cell changed by 0\.\d % > 0\.2 %"):
            refine_orientation(*args, RefinementParams(refine_cell=1, max_cell_change=0.002))


def test_refinement_rejects_a_wrong_solution(hits):
    found, geometry = hits
    spots, wavelength, U_true = found[0]
    s = pixel_to_s(spots.col, spots.row, wavelength, geometry)
    wrong_hkl = np.rint(s @ U_true @ np.linalg.inv(LYSOZYME.B).T).astype(int)[
        ::-1
    ]  # indices of other spots
    with pytest.raises(RefinementError, match="within 2.0 px of their prediction"):
        refine_orientation(
            U_true, LYSOZYME, wrong_hkl, spots.col, spots.row, spots.intensity, wavelength, geometry
        )


def test_unknown_space_group_is_refused_by_name():
    with pytest.raises(ParamsError, match="unknown space group 'P 99'"):
        ProcessingParams.from_dict({"crystal": {"space_group": "P 99"}})
    with pytest.raises(ParamsError, match="crystal.space_group must be a string"):
        ProcessingParams.from_dict({"crystal": {"space_group": 43}})
    with pytest.raises(ParamsError, match="unit cell"):
        ProcessingParams.from_dict({"crystal": {"a": 0.0}})
    params = ProcessingParams.from_dict({"crystal": {"space_group": "P 43", "c": 40.0}})
    assert params.crystal.symmetry().space_group == "P 43"
    assert len(params.crystal.symmetry().ambiguity_rotations) == 2
    assert len(LYSOZYME.ambiguity_rotations) == 1


def test_wrong_cell_run_records_the_reason(lysozyme, tmp_path):
    from kernels.process import process_run

    exp, _, _ = lysozyme
    params = ProcessingParams.from_dict(
        {
            "crystal": {"a": 61.0, "b": 72.0, "c": 45.0, "space_group": "P 21 21 21"},
            "hitfinder": {"min_spots": 100},
        }
    )
    summary = process_run(exp / "runs" / "r0001", tmp_path, params=params, trial="wrong")
    assert summary["hits"] > 0 and summary["indexed"] == 0
    rows = [r for r in read_images(tmp_path) if r["hit"] == "True"]
    assert all(r["reason"].startswith("not indexed: ") for r in rows)


def test_process_command_refuses_an_unknown_space_group(lysozyme, tmp_path, capsys):
    import json

    from kernels.__main__ import main as cli

    exp, _, _ = lysozyme
    params = tmp_path / "trial.json"
    params.write_text(json.dumps({"crystal": {"space_group": "P 43 21 3"}}))
    with pytest.raises(SystemExit, match="unknown space group 'P 43 21 3'"):
        cli(
            [
                "process",
                "--run",
                str(exp / "runs" / "r0001"),
                "--out",
                str(tmp_path / "out"),
                "--params",
                str(params),
            ]
        )
    assert not (tmp_path / "out" / "summary.json").exists()


def test_cell_parameters_tied_by_the_crystal_system():
    groups = {
        sg: CrystalSymmetry.create(cell, sg).cell_parameter_groups()
        for sg, cell in [
            ("P 43", (79, 79, 38, 90, 90, 90)),
            ("C 1 2 1", (90, 50, 60, 90, 105, 90)),
            ("P 21 3", (60, 60, 60, 90, 90, 90)),
            ("P 21 21 21", (50, 60, 70, 90, 90, 90)),
            ("P 1", (30, 40, 50, 80, 85, 95)),
        ]
    }
    assert groups == {
        "P 43": [[0, 1], [2]],
        "C 1 2 1": [[0], [1], [2], [4]],
        "P 21 3": [[0, 1, 2]],
        "P 21 21 21": [[0], [1], [2]],
        "P 1": [[0], [1], [2], [3], [4], [5]],
    }
