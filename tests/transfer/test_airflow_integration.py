"""The transfer operator and the run-concluded trigger inside real Airflow: dag.test, DagBag, triggerer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState

from kernels.io.marker import adler32_file
from operators.transfer import REPORT_NAME
from operators.triggers.run_concluded import RunConcludedTrigger
from tests.transfer.fake_runs import make_run

DAGS = Path(__file__).parent / "dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture
def transfer_dags(monkeypatch, airflow_db):
    """This room's test DAGs, added as a DAG bundle so dag.test() can run them."""
    bundles = json.loads(os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    bundles.append(
        {
            "name": "transfer-test-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        }
    )
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    from tests.transfer.dags import transfer_dags as module

    return module


def xcom_report(run, task_id="move") -> dict:
    """The value the task returned, read back from Airflow's XCom table."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one()
        )
        return XComModel.deserialize_value(row)


def test_operator_moves_a_run_between_folders_and_returns_the_report(transfer_dags, tmp_path):
    marker = make_run(tmp_path / "exp" / "runs", 1, [200_000, 3000])
    run = transfer_dags.transfer_dag.test(
        run_conf={
            "run_name": "r0001",
            "source": str(tmp_path / "exp" / "runs"),
            "destination": str(tmp_path / "hpc"),
        }
    )
    assert run.state == DagRunState.SUCCESS
    for entry in marker["files"]:
        assert adler32_file(tmp_path / "hpc" / "r0001" / entry["name"]) == entry["adler32"]
    report = json.loads((tmp_path / "hpc" / "r0001" / REPORT_NAME).read_text())
    assert report["files_copied"] == 2 and report["bytes"] == 203_000
    assert xcom_report(run) == report
    task = transfer_dags.transfer_dag.get_task("move")
    assert (task.pool, task.priority_weight) == ("default_pool", 7)


def test_operator_fails_the_task_for_a_missing_source_file(transfer_dags, tmp_path):
    make_run(tmp_path / "exp" / "runs", 1, [100, 100])
    (tmp_path / "exp" / "runs" / "r0001" / "r0001-c00.h5").unlink()
    run = transfer_dags.transfer_dag.test(
        run_conf={
            "run_name": "r0001",
            "source": str(tmp_path / "exp" / "runs"),
            "destination": str(tmp_path / "hpc"),
        }
    )
    assert run.state == DagRunState.FAILED
    assert not (tmp_path / "hpc" / "r0001" / "r0001-c00.h5").exists()


def test_operator_over_xrootd_configured_by_connections(
    transfer_dags, monkeypatch, exp_runs, scratch, xrootd_pair
):
    source, dest = xrootd_pair
    runs, _ = exp_runs
    scratch_dir, _ = scratch
    marker = make_run(runs, 1, [1_000_000, 500])
    for conn_id, server, folder in (
        ("XRD_BEAMLINE", source, runs),
        ("XRD_CENTER", dest, scratch_dir),
    ):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id}",
            json.dumps(
                {
                    "conn_type": "xrootd",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "schema": str(folder.relative_to(server.data_dir)),
                }
            ),
        )
    run = transfer_dags.transfer_conn_dag.test(
        run_conf={"run_name": "r0001"}
    )  # files from the marker
    assert run.state == DagRunState.SUCCESS
    for entry in marker["files"]:
        assert adler32_file(scratch_dir / "r0001" / entry["name"]) == entry["adler32"]


def test_trigger_is_accepted_by_an_asset_watcher_in_a_parsed_dag(
    transfer_dags, monkeypatch, tmp_path
):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SFXFLOW_TEST_EXP_DIR", str(tmp_path / "exp"))
    monkeypatch.setenv("SFXFLOW_TEST_STATE_DIR", str(tmp_path / "state"))
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.get_dag("t_on_run_concluded")
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, RunConcludedTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "operators.triggers.run_concluded.RunConcludedTrigger"
    assert kwargs["exp_dir"] == str(tmp_path / "exp")
    assert RunConcludedTrigger(**kwargs).serialize() == (classpath, kwargs)
