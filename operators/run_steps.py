"""The steps after a run's process job, shared by ``sfx_run`` and ``sfx_live_run``: merge job,
download, publish (results DB, DAG-run note, the merged-runs asset)."""

from __future__ import annotations

from airflow.sdk import Asset, Param, task

from kernels.io.marker import RUN_NAME
from operators.analysis_job import SfApiJobOperator
from operators.download import DownloadResultsOperator
from operators.pipeline.beamtime import Beamtime
from operators.pipeline.job_script import NAME_PATTERN
from operators.pipeline.run import (
    OPTIONAL_RESULT_FILES,
    RESULT_FILES,
    merged_asset_uri,
    publish_run,
    published_results,
    run_note,
)
from operators.pipeline.state import NOTE_KEY
from operators.pipeline.trial_params import trial_params_description
from operators.run_state import record_step_failed, record_step_started
from operators.settings import load_beamtime

# the pipeline state on the dashboard follows the steps; a failure is shown with its reason
STEP_CALLBACKS = {
    "on_execute_callback": record_step_started,
    "on_failure_callback": record_step_failed,
}


def run_params(beamtime: Beamtime) -> dict:
    """The params of a per-run pipeline DAG (``sfx_run``, ``sfx_live_run``), validated by Airflow."""
    return {
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
            beamtime.trial_params, type="object", description=trial_params_description()
        ),
        "ranks": Param(beamtime.ranks, type="integer", minimum=1, maximum=4096),
    }


def prepared(key: str) -> str:
    """Template of one key of the ``prepare`` task's output."""
    return "{{ ti.xcom_pull(task_ids='prepare')['" + key + "'] }}"


@task
def publish(
    info: dict,
    process: dict,
    merge: dict,
    downloaded: dict,
    follow: dict | None = None,
    outlet_events=None,
    ti=None,
) -> dict:
    """Record the run's results and announce them for dataset merges.

    ``follow`` is a live run's transfer outcome: a stalled run is published saying so.
    """
    stalled = follow.get("reason", "") if follow and follow.get("stalled") else ""
    summary = publish_run(load_beamtime(), info, process, merge, downloaded, detail=stalled)
    note = run_note(*published_results(info))
    # the DAG run's note (operators.listeners.run_notes)
    ti.xcom_push(key=NOTE_KEY, value=f"{note} (stalled: no run marker)" if stalled else note)
    experiment = load_beamtime().experiment
    outlet_events[Asset(merged_asset_uri(experiment))].extra = {
        "run": info["run"],
        "trial": info["trial"],
    }
    return summary


def merge_download_publish(beamtime: Beamtime, info, process, follow=None):
    """Wire merge → download → publish after ``process``; return (merge, download, publish)."""
    merge = SfApiJobOperator(
        task_id="merge",
        machine=beamtime.machine,
        script=prepared("merge_script"),
        key=prepared("merge_key"),
        workdir=prepared("hpc_results"),
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll=beamtime.job_poll,
    )
    download = DownloadResultsOperator(
        task_id="download",
        machine=beamtime.machine,
        remote_dir=prepared("hpc_results"),
        local_dir=prepared("local_results"),
        files=RESULT_FILES,
        optional=OPTIONAL_RESULT_FILES,
        sfapi_conn_id=beamtime.sfapi_conn_id,
    )
    publish_task = publish.override(outlets=[Asset(merged_asset_uri(beamtime.experiment))])
    # XComArgs stand for the upstream results, resolved when the task runs
    done = publish_task(info, process.output, merge.output, download.output, follow)  # type: ignore[arg-type]
    process >> merge >> download >> done
    return merge, download, done
