"""sfx_reprocess in real Airflow (dag.test): bad requests fail the DAG run before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from operators.pipeline.beamtime import VARIABLE
from tests.operators.fake_runs import make_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def reprocess_dag(monkeypatch, airflow_db, tmp_path):
    make_run(tmp_path / "exp" / "runs", 1, [10, 10])
    settings = {
        "experiment": "unit",
        "exp_dir": str(tmp_path / "exp"),
        "state_dir": str(tmp_path / "state"),
        "results_db": f"sqlite:///{tmp_path / 'results.db'}",
    }
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(settings))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sfx_reprocess.py"))
    assert bag.import_errors == {}
    return bag.get_dag("sfx_reprocess")


def pipelines_started() -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [r.run_id for r in session.query(DagRun).filter(DagRun.dag_id == "sfx_run")]


def states(run) -> dict:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.mark.parametrize(
    "conf",
    [
        {"trial": "t1", "runz": "1"},  # a typo in a key
        {"trial": "t1", "runs": "1", "trial_params": {"spotfinder": {"snr2": 5}}},
        {"trial": "t1", "runs": "1,99"},  # r0099 does not exist
    ],
)
def test_a_bad_request_fails_the_dag_run_and_starts_nothing(reprocess_dag, conf):
    before = pipelines_started()
    run = reprocess_dag.test(run_conf=conf)
    assert run.state == DagRunState.FAILED
    assert states(run)["select_runs"] == TaskInstanceState.FAILED
    assert pipelines_started() == before


def test_empty_runs_start_nothing_and_succeed(reprocess_dag):
    before = pipelines_started()
    run = reprocess_dag.test(run_conf={"trial": "t1", "runs": ""})
    assert run.state == DagRunState.SUCCESS
    assert pipelines_started() == before


def test_the_ui_form_allows_what_its_help_says(reprocess_dag):
    runs = reprocess_dag.params.get_param("runs")
    for value in ("", None, "all", "1-3,7"):
        assert runs.resolve(value) == value
    assert "all" in runs.description and "empty starts nothing" in runs.description
    trial_params = reprocess_dag.params.get_param("trial_params")
    assert "spotfinder: snr" in trial_params.description
