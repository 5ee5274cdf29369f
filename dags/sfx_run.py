"""Per-run pipeline: facility check -> transfer -> analysis job -> merge job -> download -> publish.

Started once per (run, trial) by ``sfx_run_events`` (new runs) or ``sfx_reprocess`` (new trials),
with a deterministic run id ``<run>__<trial>``; beamline staff can also trigger it from the UI with
validated params. Every step is idempotent: clearing or retrying a task never submits a second job
for the same step or counts an image twice.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from kernels.io.marker import RUN_NAME
from operators.analysis_job import SfApiJobOperator
from operators.pipeline.job_script import NAME_PATTERN
from operators.pipeline.run import at_center_asset_uri, prepare_run
from operators.pipeline.trial_params import trial_params_description
from operators.run_state import record_step_failed, record_step_started
from operators.run_steps import merge_download_publish, prepared
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
    params={
        "run": Param(
            "r0001", type="string", pattern=RUN_NAME.pattern, description="run name, e.g. r0001"
        ),
        "trial": Param(
            beamtime.trial,
            type="string",
            pattern=f"^{NAME_PATTERN.pattern}$",
            description="trial name; results of trials never overwrite each other",
        ),
        "trial_params": Param(
            beamtime.trial_params,
            type="object",
            description=trial_params_description(),
        ),
        "ranks": Param(beamtime.ranks, type="integer", minimum=1, maximum=4096),
    },
    render_template_as_native_obj=True,
    # the pipeline state on the dashboard follows the steps; a failure is shown with its reason
    default_args={
        "on_execute_callback": record_step_started,
        "on_failure_callback": record_step_failed,
    },
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
