"""A DAG scheduled on run events, for the run-concluded trigger tests."""

import os

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from operators.triggers.run_concluded import RunConcludedTrigger

START = pendulum.datetime(2026, 1, 1, tz="UTC")

# The watched experiment comes from the environment so a test can point it at its own folder.
concluded_runs = Asset(
    "sfxflow-test://concluded-runs",
    watchers=[
        AssetWatcher(
            name="test_run_concluded",
            trigger=RunConcludedTrigger(
                exp_dir=os.environ.get("SFXFLOW_TEST_EXP_DIR", "/nonexistent"),
                state_dir=os.environ.get("SFXFLOW_TEST_STATE_DIR", "/nonexistent"),
                poll_interval=0.2,
            ),
        )
    ],
)

with DAG(
    "t_on_run_concluded", schedule=[concluded_runs], start_date=START, catchup=False
) as events_dag:
    pass
