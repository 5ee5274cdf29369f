"""sfx_run in real Airflow (dag.test) against the real emulated center and real MPI jobs: a
published run and a run whose job fails, each with its DAG-run note, pipeline state and
dashboard row (failed: reason, with a link to the task log)."""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState
from fastapi.testclient import TestClient

from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.beamtime_stack import LOOPBACK_MPI_ENV
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE
from plugins.sfx_dashboard_app import create_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_notes():
    """The DAG-run note listener, registered as the sfxflow_run_notes plugin does."""
    from airflow.listeners.listener import get_listener_manager

    from operators.listeners import run_notes

    manager = get_listener_manager()
    manager.add_listener(run_notes)
    yield
    manager.clear()


def note_of(run) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter_by(dag_id=run.dag_id, run_id=run.run_id).one().note


def center_settings(emulator, tmp_path, exp, experiment: str, **overrides) -> dict:
    """Beamtime settings of ``exp`` analysed at the emulated center, in jobs on one node."""
    hpc_dir = f"/pscratch/sd/s/sfxflow/{experiment}"  # one per test: job keys name the experiment
    return {
        "experiment": experiment,
        "exp_dir": str(exp),
        "state_dir": str(tmp_path / "state"),
        "hpc_dir": hpc_dir,
        "transfer_source": str(exp),
        "transfer_dest": str(emulator.root / hpc_dir.lstrip("/")),
        "results_db": f"sqlite:///{tmp_path / 'results.db'}",
        "facility_poll_seconds": 0.5,
        "job_poll": [0.2, 1.5, 1.0],
        # one node: MPICH's fork launcher on loopback only
        "mpiexec": "mpiexec.gforker",
        "job_env": LOOPBACK_MPI_ENV,
        **overrides,
    }


def beamtime_dag(emulator, monkeypatch, tmp_path, experiment: str, **overrides):
    """sfx_run parsed with a beamtime of one simulated 4-image run at the emulated center."""
    exp = tmp_path / "exp"
    params = dataclasses.replace(SimulationParams(), chunk_size=2)
    simulate_experiment(exp, 1, 4, params=params, workers=1, log=lambda *_: None)
    settings = center_settings(emulator, tmp_path, exp, experiment, **overrides)
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(settings))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sfx_run.py"))
    assert bag.import_errors == {}
    return bag.get_dag("sfx_run"), settings


def test_a_published_run_gets_its_note_and_state(sfapi_conn, monkeypatch, tmp_path, run_notes):
    dag, settings = beamtime_dag(sfapi_conn, monkeypatch, tmp_path, "unitok")
    run = dag.test(run_conf={"run": "r0001", "trial": "t1", "trial_params": {}, "ranks": 2})
    assert run.state == DagRunState.SUCCESS
    results = Path(settings["exp_dir"]) / "results" / "t1" / "r0001"
    assert (results / "images.csv").read_text().count("\n") == 5  # header + one row per image
    summary = json.loads((results / "summary.json").read_text())
    assert note_of(run).startswith(f"{summary['hits']}/4 hits (")
    assert f"{summary['indexed']} indexed" in note_of(run)
    with ResultsDB(settings["results_db"]) as db:
        (record,) = db.pipeline_states(db.get_trial("t1")["id"]).values()
    assert (record["state"], record["total"]) == ("published", 4)


def test_a_failing_job_fails_the_run_and_the_dashboard_says_why(
    sfapi_conn, monkeypatch, tmp_path, run_notes, token, capfd
):
    # "python3 -n 2 python -m kernels ...": the launcher is not one, the job exits 2
    dag, settings = beamtime_dag(sfapi_conn, monkeypatch, tmp_path, "unitfail", mpiexec="python3")
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
    assert note_of(run) == f"failed at {record['detail']}"

    viewer = TestClient(create_app(settings["results_db"]), base_url="http://127.0.0.1")
    viewer.cookies.set("_token", token)
    data = viewer.get("/api/runs", params={"experiment": "unitfail", "trial_id": trial_id}).json()
    (pipeline,) = data["pipelines"].values()
    assert pipeline["pipeline"] == f"failed: {record['detail']}"
    page = viewer.get("/", params={"experiment": "unitfail", "trial_id": trial_id}).text
    assert escape(f"failed: {record['detail']}") in page and ">task log</a>" in page
