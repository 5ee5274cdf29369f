"""A pipeline whose job fails, in real Airflow (dag.test) against the real emulated center:
the DAG run fails, the dashboard says failed with the reason and a link to the task log."""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState
from fastapi.testclient import TestClient

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE
from plugins.sfx_dashboard_app import create_app

REPO = Path(__file__).resolve().parents[2]
HPC_DIR = "/pscratch/sd/s/sfxflow/unitfail"


@pytest.fixture
def failing_beamtime(sfapi_conn, monkeypatch, tmp_path):
    """A beamtime whose MPI launcher is not one: every process job exits with an error."""
    exp = tmp_path / "exp"
    params = dataclasses.replace(SimulationParams(), chunk_size=2)
    simulate_experiment(exp, 1, 4, params=params, workers=1, log=lambda *_: None)
    settings = {
        "experiment": "unitfail",
        "exp_dir": str(exp),
        "state_dir": str(tmp_path / "state"),
        "hpc_dir": HPC_DIR,
        "transfer_source": str(exp),
        "transfer_dest": str(sfapi_conn.root / HPC_DIR.lstrip("/")),
        "results_db": f"sqlite:///{tmp_path / 'results.db'}",
        "mpiexec": "python3",  # "python3 -n 2 python -m kernels ...": unknown option -n
        "facility_poll_seconds": 0.5,
        "job_poll": [0.2, 1.5, 1.0],
    }
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(settings))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sfx_run.py"))
    assert bag.import_errors == {}
    return bag.get_dag("sfx_run"), settings


def test_a_failing_job_fails_the_run_and_the_dashboard_says_why(failing_beamtime, token, capfd):
    dag, settings = failing_beamtime
    run = dag.test(run_conf={"run": "r0001", "trial": "t1", "trial_params": {}, "ranks": 2})
    assert run.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["transfer"] == TaskInstanceState.SUCCESS
    assert states["process"] == TaskInstanceState.FAILED
    log = capfd.readouterr().out  # dag.test() prints the task logs
    assert "Unknown option: -n" in log.split("output of job ")[1]  # the job's stdout, copied

    with ResultsDB(settings["results_db"]) as db:
        trial_id = db.get_trial("t1")["id"]
        (record,) = db.pipeline_states(trial_id).values()
    assert record["state"] == "failed" and record["total"] == 4
    assert record["detail"].startswith("process: job ") and "ended FAILED" in record["detail"]
    assert record["detail"].endswith("for more information.")  # the job's last word: one line
    assert "\n" not in record["detail"]
    assert "process" in record["log_url"] and "sfx_run" in record["log_url"]

    viewer = TestClient(create_app(settings["results_db"]), base_url="http://127.0.0.1")
    viewer.cookies.set("_token", token)
    data = viewer.get("/api/runs", params={"experiment": "unitfail", "trial_id": trial_id}).json()
    (pipeline,) = data["pipelines"].values()
    assert pipeline["pipeline"] == f"failed: {record['detail']}"
    page = viewer.get("/", params={"experiment": "unitfail", "trial_id": trial_id}).text
    assert escape(f"failed: {record['detail']}") in page and ">task log</a>" in page
