"""The setup request's checks and the trial it makes (no Airflow): runs and trial names refused
before any job with what to change, the three job scripts, the space group among the lattice's
(the user's, else the absences' choice, else the lattice's first candidate)."""

from __future__ import annotations

import json

import pytest

from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import Beamtime
from operators.pipeline.setup import (
    SetupRequestError,
    prepare_setup,
    register_setup_trial,
    setup_trial_params,
    space_group_choice,
)
from tests.operators.fake_runs import make_run

CELL_REPORT = {
    "main": {"bravais": "mC", "cell": [120.4, 27.3, 36.1, 90.0, 103.2, 90.0],
             "space_groups": ["C 1 2 1"]},
}  # fmt: skip


@pytest.fixture
def beamtime(tmp_path) -> Beamtime:
    for run in (1, 2):
        make_run(tmp_path / "exp" / "runs", run, [10, 10])
    return Beamtime(
        experiment="unit", exp_dir=str(tmp_path / "exp"), hpc_dir="/pscratch/unit",
        results_db=f"sqlite:///{tmp_path / 'results.db'}",
    )  # fmt: skip


def test_prepare_builds_three_jobs_over_the_chosen_runs(beamtime):
    info = prepare_setup(beamtime, "1-2", "setup1")
    assert [r["run"] for r in info["runs"]] == ["r0001", "r0002"]
    assert "cell-index --run ../../runs/r0002 --out r0002" in info["cell_index_script"]
    assert "cell --results r0001 r0002 --out ." in info["cell_script"]
    assert "--spots r0001/spots.h5 r0002/spots.h5" in info["geometry_script"]
    assert info["geometry_key"] == "unit.setup.setup1.geometry"


@pytest.mark.parametrize(
    ("runs", "trial", "message"),
    [
        ("", "setup1", "no runs given"),
        ("1,7", "setup1", "run r0007 does not exist"),
        ("1-", "setup1", "bad run range"),
        ("1", "bad name", "invalid trial name"),
        ("1", "taken", "trial taken exists already: pick a new trial name, e.g. taken-2"),
    ],
)
def test_bad_requests_are_refused_naming_what_to_change(beamtime, runs, trial, message):
    with ResultsDB(beamtime.results_db) as db:
        db.ensure_trial("taken", {})
    with pytest.raises(SetupRequestError, match=message):
        prepare_setup(beamtime, runs, trial)


def test_the_trial_holds_the_cell_and_a_space_group_of_its_lattice():
    params = setup_trial_params({"spotfinder": {"snr": 5}}, CELL_REPORT, None)
    assert params["crystal"]["space_group"] == "C 1 2 1" and params["crystal"]["beta"] == 103.2
    assert params["spotfinder"]["snr"] == 5
    with pytest.raises(SetupRequestError, match="does not fit the mC cell.*C 1 2 1"):
        setup_trial_params({}, CELL_REPORT, "P 43 21 2")


def test_the_trial_holds_the_refined_geometry_and_the_refined_cell_scale():
    geom = "res = 10000\nclen = 0.1\np0/min_fs = 0\np0/max_fs = 9\np0/min_ss = 0\np0/max_ss = 9\n"
    geom += "p0/corner_x = -5\np0/corner_y = -5\np0/fs = x\np0/ss = y\n"
    params = setup_trial_params({}, CELL_REPORT, None, geom, scale=1.01)
    assert params["detector"]["geom"] == geom
    assert params["crystal"]["a"] == pytest.approx(121.604) and params["crystal"]["beta"] == 103.2
    with pytest.raises(SetupRequestError, match=r"no valid trial: detector\.geom:2: "):
        setup_trial_params({}, CELL_REPORT, None, "res = 10000\np0/corner_q = 1\n")


def test_the_space_group_is_the_users_else_the_absences_else_the_lattices():
    report = {"main": {**CELL_REPORT["main"], "bravais": "oP", "cell": [50, 60, 70, 90, 90, 90],
                       "space_groups": ["P 2 2 2", "P 2 2 21", "P 21 21 2", "P 21 21 21"]}}  # fmt: skip
    decided = {"choice": {"space_group": "P 2 21 2", "reason": "margin 5"}}
    undecided = {"choice": {"space_group": None, "reason": "too close to decide"}}
    assert space_group_choice(report, decided, "P 21 21 21") == (
        "P 21 21 21", "given with the request"
    )  # fmt: skip
    assert space_group_choice(report, decided, None) == ("P 2 21 2", "by the absences: margin 5")
    chosen, why = space_group_choice(report, undecided, None)
    assert chosen == "P 2 2 2" and "cannot decide (too close to decide)" in why
    # the absences' axis setting (screw along b) makes a valid trial of this lattice
    params = setup_trial_params({}, report, "P 2 21 2")
    assert params["crystal"]["space_group"] == "P 2 21 2"


def test_a_failed_absences_job_still_gives_the_lattices_first_candidate_saying_why():
    chosen, why = space_group_choice(CELL_REPORT, None, None)
    assert chosen == "C 1 2 1" and "absences job brought back no absences.json" in why
    assert space_group_choice(CELL_REPORT, None, "C 1 2 1")[1] == "given with the request"


def test_nothing_registers_when_the_cell_or_geometry_did_not_come_back(beamtime, tmp_path):
    local = tmp_path / "setup1"
    local.mkdir()
    (local / "cell.json").write_text(json.dumps(CELL_REPORT))
    with pytest.raises(SetupRequestError, match="nothing to register: cell_histograms.png, "):
        register_setup_trial(beamtime, {"local_setup": str(local), "trial": "setup1"}, None)
