"""Space groups from systematic absences on simulated merged intensities: a screw-axis group
(P 43 21 2 lysozyme) ranked first with its enantiomorph, a group without screw axes (P 4 2 2),
an orthorhombic screw axis along a (a non-standard setting), and the ``cell --absences`` CLI."""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from kernels.cell.absences import AbsenceError, axis_settings, score_absences
from kernels.cell.determination import lattice_space_groups
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.mtz import write_merged_mtz
from tests.kernels.cell.lattices import LATTICES
from tests.kernels.cell.test_cell_cli import in_process, write_cellfree_dir
from tests.kernels.cell.test_cell_determination import noisy_reduced_cells


def merged(cell, true_group: str, merge_group: str, seed: int = 0, d_min: float = 2.5):
    """Unique reflections of `merge_group` (no absences of its own) with intensities of a
    crystal in `true_group`: Wilson-distributed, zero where the true group is absent, and
    Gaussian noise of sigma = sqrt(I + 50). Returns hkl, I, sigma."""
    rng = np.random.default_rng(seed)
    hkl = np.array(
        gemmi.make_miller_array(gemmi.UnitCell(*cell), gemmi.SpaceGroup(merge_group), d_min)
    )
    ops = gemmi.SpaceGroup(true_group).operations()
    absent = np.array([ops.is_systematically_absent([int(v) for v in h]) for h in hkl])
    truth = np.where(absent, 0.0, rng.exponential(400.0, len(hkl)))
    sigma = np.sqrt(truth + 50.0)
    return hkl, truth + rng.normal(0.0, sigma), sigma


def ranked(cell, true_group, merge_group, candidates):
    hkl, intensity, sigma = merged(cell, true_group, merge_group)
    return score_absences(hkl, intensity / sigma, candidates)


def test_screw_axis_group_ranked_first_with_its_enantiomorph():
    cell = LATTICES["tP"][0]
    scores = ranked(cell, "P 43 21 2", "P 4 2 2", lattice_space_groups("tetragonal", "P"))
    names = [s.space_group for s in scores]
    # absences cannot tell enantiomorphs apart: both lead, ahead of every other candidate
    assert set(names[:2]) == {"P 41 21 2", "P 43 21 2"}
    assert scores[0].disagreements == scores[1].disagreements < scores[2].disagreements
    assert scores[0].disagreement_fraction < 0.05 < scores[2].disagreement_fraction
    assert abs(scores[0].absent_i_over_sigma) < 1.0  # what it calls absent is noise
    wrong = {s.space_group: s for s in scores}["P 42 21 2"]  # 00l, l = 4n + 2 are not absent
    assert wrong.disagreements > scores[0].disagreements


def test_group_without_screw_axes_ranked_first():
    cell = LATTICES["tP"][0]
    scores = ranked(cell, "P 4 2 2", "P 4 2 2", lattice_space_groups("tetragonal", "P"))
    assert scores[0].space_group == "P 4 2 2"  # ties P 4 (no absences either), more symmetric
    assert scores[0].called_absent == 0 and scores[0].disagreements <= 2
    screw = {s.space_group: s for s in scores}["P 43 21 2"]
    assert screw.absent_i_over_sigma > 10 and screw.disagreement_fraction > 0.5


def test_orthorhombic_screw_along_a_found_in_its_setting():
    cell = (50.0, 60.0, 70.0, 90.0, 90.0, 90.0)
    candidates = axis_settings(lattice_space_groups("orthorhombic", "P"))
    assert {"P 21 2 2", "P 2 21 2", "P 2 2 21", "P 21 21 2", "P 2 21 21"} <= set(candidates)
    scores = ranked(cell, "P 21 2 2", "P 2 2 2", candidates)
    assert scores[0].space_group == "P 21 2 2"
    assert scores[0].disagreements < scores[1].disagreements


def test_cli_ranks_the_determined_lattices_groups(tmp_path, capsys):
    cell = LATTICES["tP"][0]
    write_cellfree_dir(tmp_path / "r1", noisy_reduced_cells(cell, 40, seed=1))
    hkl, intensity, sigma = merged(cell, "P 43 21 2", "P 4 2 2")
    symmetry = CrystalSymmetry.create(cell, "P 4 2 2")
    mtz = write_merged_mtz(
        tmp_path / "merged.mtz", symmetry, hkl, intensity, sigma, hkl[:, 0] * 0 + 4
    )
    out = tmp_path / "cell"
    code, printed, err = in_process(
        capsys, "cell", "--results", str(tmp_path / "r1"), "--out", str(out),
        "--absences", str(mtz),
    )  # fmt: skip
    assert code == 0, err
    assert "by absences" in printed and printed.split("by absences")[1].count("P 4") >= 2
    report = json.loads((out / "cell.json").read_text())
    ranking = report["main"]["space_groups_by_absences"]
    assert {r["space_group"] for r in ranking[:2]} == {"P 41 21 2", "P 43 21 2"}
    assert ranking[0]["tested"] > 20 and ranking[0]["disagreements"] <= 2
    # a merge in another cell (its Miller indices in another setting) is refused, named
    other = CrystalSymmetry.create((38.4, 79.1, 79.1, 90, 90, 90), "P 2 2 2")
    write_merged_mtz(tmp_path / "other.mtz", other, hkl, intensity, sigma, hkl[:, 0] * 0 + 4)
    code, _, err = in_process(
        capsys, "cell", "--results", str(tmp_path / "r1"), "--out", str(out),
        "--absences", str(tmp_path / "other.mtz"),
    )  # fmt: skip
    assert code == 2 and "other.mtz" in err and "merge in the determined cell" in err


def test_bad_intensities_are_refused():
    with pytest.raises(AbsenceError, match="one finite I/sigma per reflection"):
        score_absences(np.zeros((3, 3)), [1.0, np.nan, 2.0], ["P 2 2 2"])
    with pytest.raises(AbsenceError, match="no candidate"):
        score_absences(np.zeros((3, 3)), [1.0, 1.0, 2.0], [])
