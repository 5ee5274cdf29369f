"""DAGs for the data-movement tests: the transfer operator alone, and a DAG scheduled on run events."""

import os

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from operators.transfer import TransferRunOperator
from operators.triggers.run_concluded import RunConcludedTrigger

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("t_transfer_run", schedule=None, start_date=START) as transfer_dag:
    TransferRunOperator(
        task_id="move",
        run_name="{{ dag_run.conf['run_name'] }}",
        source="{{ dag_run.conf['source'] }}",
        destination="{{ dag_run.conf['destination'] }}",
        pool="default_pool",
        priority_weight=7,
        backoff_seconds=0.1,
    )

with DAG("t_transfer_run_conn", schedule=None, start_date=START) as transfer_conn_dag:
    TransferRunOperator(
        task_id="move",
        run_name="{{ dag_run.conf['run_name'] }}",
        source_conn_id="xrd_beamline",
        dest_conn_id="xrd_center",
    )

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
