"""sfx_setup in real Airflow (dag.test) against the real emulated center and real jobs: a
40-image P 21 21 21 run → cell-free indexing, cell determination and geometry refinement jobs →
the outputs downloaded → the runs processed and merged in P 2 2 2, the lattice's groups ranked by
the merge's absences → a new trial holding the cell found and the group the absences chose (not
the lattice's first candidate, P 2 2 2) → a reprocess triggered with it (the request's checks:
tests/operators/pipeline/test_setup_request.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from airflow.utils.state import DagRunState

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE
from operators.pipeline.setup import ABSENCES_FILES, SETUP_FILES
from tests.dags.test_sfx_run import REPO, center_settings

CELL, SPACE_GROUP = (52.0, 63.0, 71.0, 90.0, 90.0, 90.0), "P 21 21 21"


def setup_dag(emulator, monkeypatch, tmp_path, images: int):
    """sfx_setup parsed with a beamtime at the emulated center whose one run is a simulated
    P 21 21 21 run of ``images`` images."""
    exp = tmp_path / "exp"
    params = dataclasses.replace(
        SimulationParams(), hit_rate=1.0, cell=CELL, space_group=SPACE_GROUP, chunk_size=20
    )
    simulate_experiment(exp, 1, images, params=params, workers=1, log=lambda *_: None)
    settings = center_settings(emulator, tmp_path, exp, "unitsetup")
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(settings))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sfx_setup.py"))
    assert bag.import_errors == {}
    return bag.get_dag("sfx_setup"), settings


def reprocess_confs() -> list[dict]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [r.conf for r in session.query(DagRun).filter(DagRun.dag_id == "sfx_reprocess")]


def test_setup_registers_a_trial_with_the_cell_found(sfapi_conn, monkeypatch, tmp_path):
    dag, settings = setup_dag(sfapi_conn, monkeypatch, tmp_path, images=80)
    run = dag.test(run_conf={"runs": "1", "trial": "setup1", "reprocess_runs": "all"})
    assert run.state == DagRunState.SUCCESS
    local = Path(settings["exp_dir"]) / "setup" / "setup1"
    assert all((local / name).is_file() for name in SETUP_FILES + ABSENCES_FILES)
    with ResultsDB(settings["results_db"]) as db:
        trial_params = db.get_trial("setup1")["params"]
    crystal = trial_params["crystal"]
    assert trial_params["detector"]["geom"] == (local / "refined.geom").read_text()
    absences = json.loads((local / ABSENCES_FILES[0]).read_text())
    assert absences["merged_in"] == "P 2 2 2" and absences["ranking"][0]["tested"] > 0
    assert crystal["space_group"] == absences["choice"]["space_group"] == SPACE_GROUP
    found = [crystal[k] for k in ("a", "b", "c", "alpha", "beta", "gamma")]
    assert np.allclose(found[:3], CELL[:3], rtol=3e-3) and np.allclose(found[3:], 90.0)
    report = json.loads((local / "geometry_refinement.json").read_text())
    assert report["rms_after_px"] < 1.0 and abs(report["cell_scale"] - 1) < 3e-3
    (conf,) = [c for c in reprocess_confs() if c.get("trial") == "setup1"]
    assert conf["runs"] == "all" and conf["trial_params"]["crystal"] == crystal
