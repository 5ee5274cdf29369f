"""The run-concluded trigger inside real Airflow: accepted by an AssetWatcher of a parsed DAG."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from operators.triggers.run_concluded import RunConcludedTrigger

DAGS = Path(__file__).parent / "dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture
def trigger_dags(monkeypatch, airflow_db):
    """This room's test DAGs, added as a DAG bundle so dag.test() can run them."""
    bundles = json.loads(os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    bundles.append(
        {
            "name": "trigger-test-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        }
    )
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    from tests.operators.triggers.dags import run_events_dags as module

    return module


def test_trigger_is_accepted_by_an_asset_watcher_in_a_parsed_dag(
    trigger_dags, monkeypatch, tmp_path
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
