"""Per-run pipeline: facility check -> transfer -> analysis job -> merge job -> download -> publish.

Started once per (run, trial) by ``sfx_run_events`` (new runs) or ``sfx_reprocess`` (new trials),
with a deterministic run id ``<run>__<trial>``; beamline staff can also trigger it from the UI with
validated params. Every step is idempotent: clearing or retrying a task never submits a second job
for the same step or counts an image twice.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from operators.analysis_job import SfApiJobOperator
from operators.pipeline.run import at_center_asset_uri, prepare_run
from operators.run_steps import STEP_CALLBACKS, merge_download_publish, prepared, run_params
from operators.sensors.facility import FacilityAvailableSensor
from operators.settings import load_beamtime

beamtime = load_beamtime()


@dag(
    dag_id="sfx_run",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=16,
    tags=["sfxflow"],
    params=run_params(beamtime),
    render_template_as_native_obj=True,
    default_args=STEP_CALLBACKS,
    doc_md=__doc__,
)
def sfx_run():
    @task(retries=0)
    def prepare(params=None) -> dict:
        """Validate the trial, register it, and build the job scripts (no secret in them)."""
        return prepare_run(
            load_beamtime(), params["run"], params["trial"], params["trial_params"], params["ranks"]
        )

    @task(
        pool="sfx_transfer",
        retries=3,
        retry_delay=pendulum.duration(seconds=10),
        outlets=[Asset(at_center_asset_uri(beamtime.experiment))],
    )
    def transfer(info: dict, outlet_events=None) -> dict:
        """Copy the run (with its calibration snapshot) to the center, verified and resumable."""
        # imported when the task runs: the DAG file is parsed often, the transfer code is heavier
        from operators.transfer import transfer_run_files

        report = transfer_run_files(load_beamtime(), info)
        outlet_events[Asset(at_center_asset_uri(beamtime.experiment))].extra = {
            "run": info["run"],
            "bytes": report["total_bytes"],
            "seconds": report["seconds"],
        }
        return report

    info = prepare()
    facility = FacilityAvailableSensor(
        task_id="wait_for_facility",
        system=beamtime.machine,
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll_seconds=beamtime.facility_poll_seconds,
    )
    moved = transfer(info)
    process = SfApiJobOperator(
        task_id="process",
        machine=beamtime.machine,
        script=prepared("process_script"),
        key=prepared("process_key"),
        workdir=prepared("hpc_results"),
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll=beamtime.job_poll,
    )
    merge_download_publish(beamtime, info, process)
    info >> facility >> moved >> process


sfx_run()
