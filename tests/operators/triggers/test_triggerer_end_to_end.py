"""A real Airflow triggerer runs RunConcludedTrigger from an AssetWatcher: marker -> asset event, once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facility.ports import free_port
from tests.operators.fake_runs import make_run

REPO = Path(__file__).resolve().parents[3]
DAGS = Path(__file__).parent / "dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "t_on_run_concluded"


@pytest.fixture
def airflow_site(tmp_path):
    """Environment of a private Airflow installation (SQLite) holding only this room's test DAGs."""
    home = tmp_path / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": "transfer-test-dags",
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(DAGS)},
                    }
                ]
            ),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "SFXFLOW_TEST_EXP_DIR": str(tmp_path / "exp"),
            "SFXFLOW_TEST_STATE_DIR": str(tmp_path / "state"),
            "PYTHONPATH": str(REPO),
        }
    )
    return env, home / "airflow.db"


def airflow(env, *args):
    subprocess.run(
        [AIRFLOW, *args], env=env, cwd=REPO, check=True, capture_output=True, timeout=120
    )


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as connection:
        return connection.execute(sql).fetchall()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Daemon:
    """An Airflow component in its own process group, logging to a file."""

    def __init__(self, env, log: Path, *args):
        self.log = log
        self.process = subprocess.Popen(
            [AIRFLOW, *args],
            env=env,
            cwd=REPO,
            start_new_session=True,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
        )

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def asset_events(db: Path) -> list[dict]:
    rows = query(db, "SELECT extra FROM asset_event ORDER BY id")
    return [json.loads(extra)["payload"] for (extra,) in rows]


def test_triggerer_turns_each_concluded_run_into_one_asset_event(airflow_site, tmp_path):
    env, db = airflow_site
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")
    airflow(env, "dags", "unpause", DAG_ID)
    if not query(db, "SELECT count(*) FROM asset_watcher")[0][0]:
        # watchers are registered only for assets the scheduler has activated: activate, then parse again
        scheduler = Daemon(env, tmp_path / "scheduler.log", "scheduler")
        try:
            wait_for(
                lambda: query(db, "SELECT count(*) FROM asset_active")[0][0] > 0, 60, "active asset"
            )
        finally:
            scheduler.stop()
        airflow(env, "dags", "reserialize")
    assert query(
        db, "SELECT t.classpath FROM asset_watcher w JOIN trigger t ON t.id = w.trigger_id"
    ) == [("operators.triggers.run_concluded.RunConcludedTrigger",)]

    runs = tmp_path / "exp" / "runs"
    make_run(runs, 2, [10], conclude=False)  # in progress: never an event
    log = tmp_path / "triggerer.log"
    triggerer = Daemon(env, log, "triggerer")
    try:
        wait_for(
            lambda: "starting" in log.read_text() and "trigger" in log.read_text(),
            60,
            "trigger start",
        )
        make_run(runs, 1, [1000, 20])
        concluded = time.monotonic()
        wait_for(lambda: asset_events(db), 10, "asset event")
        latency = time.monotonic() - concluded
        (event,) = asset_events(db)
        assert event["run_name"] == "r0001" and [f["name"] for f in event["files"]] == [
            "r0001-c00.h5",
            "r0001-c01.idx.h5",
        ]
        assert latency <= 2.0, f"asset event {latency:.2f} s after the marker"
        make_run(runs, 1, [1000, 20])  # the DAQ writes the marker again: duplicate
        time.sleep(1.5)
        assert len(asset_events(db)) == 1
    finally:
        triggerer.stop()

    # restart: r0001 is still on disk but already emitted; only the newly concluded r0002 comes
    triggerer = Daemon(env, tmp_path / "triggerer2.log", "triggerer")
    try:
        make_run(runs, 2, [10])
        wait_for(lambda: len(asset_events(db)) >= 2, 60, "second asset event")
        time.sleep(1.0)
        assert [e["run_name"] for e in asset_events(db)] == ["r0001", "r0002"]
    finally:
        triggerer.stop()
