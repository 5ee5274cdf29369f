"""Re-merge every dataset (tag combination) that a newly published run belongs to, per trial,
with the dataset's per-event splits. Triggered by the merged-runs asset; by hand, the conf
``{"published": [{"run": ..., "trial": ...}]}`` names the runs."""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from operators.analysis_job import SfApiJobOperator
from operators.download import DownloadResultsOperator
from operators.pipeline.dataset_merge import dataset_merge_requests, record_dataset_stats
from operators.pipeline.run import merged_asset_uri
from operators.settings import load_beamtime

beamtime = load_beamtime()
merged_runs = Asset(merged_asset_uri(beamtime.experiment))


@dag(
    dag_id="sfx_dataset_merge",
    schedule=[merged_runs],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # merges of one dataset never race each other
    tags=["sfxflow"],
    doc_md=__doc__,
)
def sfx_dataset_merge():
    @task
    def plan(triggering_asset_events=None, dag_run=None) -> list[dict]:
        events = triggering_asset_events[merged_runs] if triggering_asset_events else []
        published = [e.extra for e in events if "run" in e.extra]
        if not published and dag_run is not None and dag_run.conf:
            published = list(dag_run.conf.get("published", []))
        return dataset_merge_requests(load_beamtime(), published)

    @task
    def job_kwargs(requests: list[dict]) -> list[dict]:
        return [{"script": r["script"], "key": r["key"], "workdir": r["workdir"]} for r in requests]

    @task
    def download_kwargs(requests: list[dict]) -> list[dict]:
        return [
            {
                "remote_dir": r["workdir"],
                "local_dir": r["local"],
                "files": r["files"],
                "manifests": r["manifests"],  # each split's MTZs, listed in its split_stats.json
            }
            for r in requests
        ]

    @task
    def record(requests: list[dict]) -> list[dict]:
        return [record_dataset_stats(load_beamtime(), r) for r in requests]

    requests = plan()
    merge = SfApiJobOperator.partial(
        task_id="merge",
        machine=beamtime.machine,
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll=beamtime.job_poll,
    ).expand_kwargs(job_kwargs(requests))
    download = DownloadResultsOperator.partial(
        task_id="download",
        machine=beamtime.machine,
        optional=["shells.png"],
        sfapi_conn_id=beamtime.sfapi_conn_id,
    ).expand_kwargs(download_kwargs(requests))
    merge >> download >> record(requests)


sfx_dataset_merge()
