"""Small DAGs around single operators, configured per test through ``dag.test(run_conf=...)``."""

import pendulum
from airflow.sdk import DAG

from operators.analysis_job import SfApiJobOperator
from operators.download import DownloadResultsOperator
from operators.sensors.facility import FacilityAvailableSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")

JOB = dict(
    task_id="job",
    machine="perlmutter",
    script="{{ dag_run.conf['script'] }}",
    key="{{ dag_run.conf['key'] }}",
    workdir="{{ dag_run.conf.get('workdir', '') }}",
    poll=(0.2, 1.5, 1.0),
    retries=0,
)

with DAG("t_job", schedule=None, start_date=START) as job_dag:
    SfApiJobOperator(**JOB)  # watches short jobs from the worker

with DAG("t_job_deferred", schedule=None, start_date=START) as deferred_job_dag:
    SfApiJobOperator(**JOB, sync_wait=0)  # always waits in the triggerer

with DAG("t_facility", schedule=None, start_date=START) as facility_dag:
    FacilityAvailableSensor(task_id="wait", system="perlmutter", poll_seconds=0.5)

with DAG("t_download", schedule=None, start_date=START) as download_dag:
    DownloadResultsOperator(
        task_id="dl",
        machine="perlmutter",
        remote_dir="{{ dag_run.conf['remote'] }}",
        local_dir="{{ dag_run.conf['local'] }}",
        files=["merged.mtz", "merge_stats.json"],
        optional=["weather.png"],
    )
