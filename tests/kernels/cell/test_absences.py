"""Space groups from systematic absences on simulated merged intensities: a screw-axis group
(P 43 21 2 lysozyme) ranked first with its enantiomorph, a group without screw axes (P 4 2 2),
an orthorhombic screw axis along a (a non-standard setting), the ``cell --absences`` CLI; each
lattice's symmorphic merge group (gemmi: pure rotations, the lattice's point group), the choice
the absences make or why they make none, and the ``absences`` command."""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from kernels.cell.absences import (
    AbsenceError,
    AbsenceScore,
    axis_settings,
    choose_space_group,
    score_absences,
    symmorphic_group,
)
from kernels.cell.bravais import BRAVAIS
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


@pytest.mark.parametrize("bravais", BRAVAIS, ids=lambda b: b.symbol)
def test_symmorphic_group_of_each_lattice_has_no_screw_or_glide(bravais):
    name = symmorphic_group(bravais.symbol)
    candidates = lattice_space_groups(bravais.family, bravais.centring)
    assert name in candidates
    sg = gemmi.SpaceGroup(name)
    assert sg.centring_type() == bravais.centring
    # every operation bar the centring translations is a pure rotation: no screw, no glide
    assert all(op.tran == [0, 0, 0] for op in sg.operations().sym_ops)
    # the lattice's full rotation symmetry: the largest point group among its candidates
    largest = max(candidates, key=lambda g: len(gemmi.SpaceGroup(g).operations().sym_ops))
    assert sg.point_group_hm() == gemmi.SpaceGroup(largest).point_group_hm()


def test_lattices_hold_their_screw_and_trigonal_groups():
    assert lattice_space_groups("monoclinic", "P") == ["P 1 2 1", "P 1 21 1"]
    assert {"P 3 2 1", "P 32 2 1", "P 31", "P 61 2 2"} <= set(
        lattice_space_groups("hexagonal", "P")
    )


def test_absences_choose_the_screw_group_or_say_why_not():
    candidates = axis_settings(lattice_space_groups("orthorhombic", "P"))
    choice = choose_space_group(ranked((50.0, 60.0, 70.0, 90, 90, 90), "P 21 21 21", "P 2 2 2",
                                       candidates))  # fmt: skip
    assert choice.space_group == "P 21 21 21" and "margin" in choice.reason
    tetragonal = ranked(
        LATTICES["tP"][0], "P 43 21 2", "P 4 2 2", lattice_space_groups("tetragonal", "P")
    )
    choice = choose_space_group(tetragonal)
    assert choice.space_group in ("P 41 21 2", "P 43 21 2")  # enantiomorphs: named as such
    assert "same absences as P 43 21 2" in choice.reason
    close = [AbsenceScore("P 2 2 21", 2, 0.1, 1, 6), AbsenceScore("P 2 2 2", 0, np.nan, 2, 6)]
    assert choose_space_group(close).space_group is None
    assert "too close" in choose_space_group(close).reason
    noisy = [AbsenceScore("P 2 2 21", 2, 0.1, 3, 6), AbsenceScore("P 2 2 2", 0, np.nan, 6, 6)]
    assert choose_space_group(noisy).space_group is None
    assert "too weak" in choose_space_group(noisy).reason
    clear = [AbsenceScore("P 2 2 21", 5, 0.1, 0, 9), AbsenceScore("P 2 2 2", 0, np.nan, 5, 9)]
    assert choose_space_group(clear, weak_fraction=0.3).space_group == "P 2 2 21"
    weak = choose_space_group(clear, weak_fraction=0.8)  # five weak ones: likely by chance
    assert weak.space_group is None and "80% of the merge is weak" in weak.reason
    untested = [AbsenceScore("C 1 2 1", 0, np.nan, 0, 0)]
    assert choose_space_group(untested).space_group is None
    with pytest.raises(AbsenceError, match="unknown Bravais lattice 'oX'"):
        symmorphic_group("oX")


def test_absences_command_writes_the_ranking_and_choice(tmp_path, capsys):
    cell = (50.0, 60.0, 70.0, 90.0, 90.0, 90.0)
    report = {"main": {"bravais": "oP", "cell": list(cell),
                       "space_groups": lattice_space_groups("orthorhombic", "P")}}  # fmt: skip
    (tmp_path / "cell.json").write_text(json.dumps(report))
    hkl, intensity, sigma = merged(cell, "P 2 21 2", "P 2 2 2")
    symmetry = CrystalSymmetry.create(cell, "P 2 2 2")
    write_merged_mtz(tmp_path / "m.mtz", symmetry, hkl, intensity, sigma, hkl[:, 0] * 0 + 4)
    args = ["--cell", str(tmp_path / "cell.json"), "--merged", str(tmp_path / "m.mtz")]
    code, printed, err = in_process(capsys, "absences", *args, "--out", str(tmp_path / "a.json"))
    assert code == 0, err
    written = json.loads((tmp_path / "a.json").read_text())
    assert written["choice"]["space_group"] == "P 2 21 2" and "chosen: P 2 21 2" in printed
    assert written["merged_in"] == "P 2 2 2" and written["ranking"][0]["space_group"] == "P 2 21 2"
    assert 0 < written["weak_fraction"] < 0.3
    faint = CrystalSymmetry.create(cell, "P 2 2 2")  # the same crystal, 20 times weaker
    write_merged_mtz(tmp_path / "f.mtz", faint, hkl, intensity / 20, sigma, hkl[:, 0] * 0 + 4)
    args[-1] = str(tmp_path / "f.mtz")
    code, printed, err = in_process(capsys, "absences", *args, "--out", str(tmp_path / "f.json"))
    assert code == 0 and "chosen: none" in printed and "of the merge is weak" in printed
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = in_process(capsys, "absences", "--cell", str(tmp_path / "bad.json"),
                              "--merged", "m.mtz", "--out", "x")  # fmt: skip
    assert code == 2 and "bad.json: not a cell report" in err
