"""Live per-run pipeline: the job starts with the run, chunks follow the DAQ, merged at its end.

Started by ``sfx_run_events`` on a run-started event (run id ``<run>__<trial>``, like
``sfx_run``'s, which is then not started for that run): ``prepare`` → ``wait_for_facility`` →
``submit_live_job`` (one ``--live`` process job per run, through the SF API, not waited for) →
``follow_chunks`` (each chunk moved to the center as it closes, deferred in between; at the run
marker the rest and ``CONCLUDED.json`` last; flags the run stalled when its DAQ stops; replaces
the job, which resumes from its checkpoint, when it dies meanwhile) → ``wait_for_job`` (the same
job, by its key family; exit 4 "stalled" is accepted) → merge → download → publish, as in
``sfx_run``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from operators.analysis_job import SfApiJobOperator
from operators.live_transfer import LiveTransferOperator
from operators.pipeline.live import prepare_live_run
from operators.run_steps import STEP_CALLBACKS, merge_download_publish, prepared, run_params
from operators.sensors.facility import FacilityAvailableSensor
from operators.settings import load_beamtime

STALLED_EXIT = 4  # the live job's exit code when its run stopped coming (kernels --live)

beamtime = load_beamtime()


@dag(
    dag_id="sfx_live_run",
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
def sfx_live_run():
    @task(retries=0)
    def prepare(params=None) -> dict:
        """Validate the trial, register the run being acquired, build the live job scripts."""
        return prepare_live_run(
            load_beamtime(), params["run"], params["trial"], params["trial_params"], params["ranks"]
        )

    info = prepare()
    facility = FacilityAvailableSensor(
        task_id="wait_for_facility",
        system=beamtime.machine,
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll_seconds=beamtime.facility_poll_seconds,
    )
    step = {
        "machine": beamtime.machine,
        "script": prepared("process_script"),
        "key": prepared("process_key"),
        "workdir": prepared("hpc_results"),
        "accept_exit_codes": (STALLED_EXIT,),
    }
    job = step | {"sfapi_conn_id": beamtime.sfapi_conn_id, "poll": beamtime.job_poll}
    submit = SfApiJobOperator(task_id="submit_live_job", submit_only=True, **job)
    follow = LiveTransferOperator(
        task_id="follow_chunks",
        info=info,
        job=step,  # a job that dies while the run acquires is replaced by this task at once
        pool="sfx_transfer",
        retries=3,
        retry_delay=pendulum.duration(seconds=10),
    )
    process = SfApiJobOperator(task_id="wait_for_job", **job)
    merge_download_publish(beamtime, info, process, follow.output)
    info >> facility >> submit >> follow >> process


sfx_live_run()
