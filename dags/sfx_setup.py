"""The first hour of a beamtime: from chosen runs, the unit cell and the detector geometry, and a
new trial holding them.

Triggered from the UI ("Trigger DAG w/ config") with ``{"runs": "1-3", "trial": "setup1"}``:
``prepare`` checks the request (runs existing and concluded, a new trial name) → the runs are
copied to the center → three SF API jobs: cell-free indexing of each run, cell determination,
geometry refinement on the runs' spots → the outputs come back to ``<exp>/setup/<trial>/``
(cell.json, cell_histograms.png, refined.geom, geometry_refinement.json, residual_map.png) → a
fourth job processes the runs with that cell and geometry in the lattice's group without screw
axes or glides, merges them and ranks the lattice's space groups by the absences
(absences.json, brought back too) → ``register_trial`` registers the trial with the cell found,
the space group the absences chose (else the lattice's first candidate, also when the
absences job failed; a given ``space_group`` wins) and the refined geometry. With
``reprocess_runs`` (e.g. ``"all"``), ``sfx_reprocess`` is then triggered with that trial.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, TriggerRule, dag, task

from operators.analysis_job import SfApiJobOperator
from operators.download import DownloadResultsOperator
from operators.pipeline.job_script import NAME_PATTERN
from operators.pipeline.reprocess import ALL_RUNS
from operators.pipeline.setup import (
    ABSENCES_FILES,
    SETUP_FILES,
    SETUP_STEPS,
    prepare_setup,
    register_setup_trial,
)
from operators.run_steps import prepared
from operators.sensors.facility import FacilityAvailableSensor
from operators.settings import load_beamtime

beamtime = load_beamtime()
RUNS_PATTERN = rf"^({ALL_RUNS}|[0-9,\- ]*)$"


@task(retries=0)
def absences_job(info: dict, downloaded: dict) -> dict:
    """The absences job's script, from the cell and geometry found (no secret in it)."""
    from operators.pipeline.setup import absences_script

    return absences_script(load_beamtime(), info)


def absences_step(info, downloaded):
    """The absences job built from the downloaded outputs, run, and its absences.json (and the
    merge's statistics) downloaded; the download's output."""
    job = "{{ ti.xcom_pull(task_ids='absences_job')['absences_%s'] }}"
    absences = SfApiJobOperator(
        task_id="absences",
        machine=beamtime.machine,
        script=job % "script",
        key=job % "key",
        workdir=prepared("hpc_setup"),
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll=beamtime.job_poll,
    )
    download = DownloadResultsOperator(
        task_id="download_absences",
        machine=beamtime.machine,
        remote_dir=prepared("hpc_setup"),
        local_dir=prepared("local_setup"),
        files=ABSENCES_FILES,
        sfapi_conn_id=beamtime.sfapi_conn_id,
    )
    absences_job(info, downloaded) >> absences >> download
    return download.output


@dag(
    dag_id="sfx_setup",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    tags=["sfxflow"],
    params={
        "runs": Param(
            "1", type="string", pattern=RUNS_PATTERN, description="runs to learn from, e.g. 1-3"
        ),
        "trial": Param(
            "setup1",
            type="string",
            pattern=f"^{NAME_PATTERN.pattern}$",
            description="name of the new trial (must not exist yet)",
        ),
        "space_group": Param(
            None,
            type=["null", "string"],
            description="space group of the trial (default: the absences' choice, else the "
            "lattice's first candidate)",
        ),
        "reprocess_runs": Param(
            None,
            type=["null", "string"],
            pattern=RUNS_PATTERN,
            description=f'then reprocess these runs with the new trial, e.g. "{ALL_RUNS}"',
        ),
    },
    render_template_as_native_obj=True,  # the reprocess conf is passed on as a dict
    doc_md=__doc__,
)
def sfx_setup():
    @task(retries=0)
    def prepare(params=None) -> dict:
        """Check the request and build the three job scripts (no secret in them)."""
        return prepare_setup(load_beamtime(), params["runs"], params["trial"])

    @task(pool="sfx_transfer", retries=3, retry_delay=pendulum.duration(seconds=10))
    def transfer(info: dict) -> list[dict]:
        """Copy the chosen runs to the center (verified; runs already there are kept)."""
        from operators.transfer import transfer_run

        bt = load_beamtime()
        return [
            transfer_run(
                f"{bt.transfer_source}/runs", f"{bt.transfer_dest}/runs", run["run"],
                run["files"], parallel_files=bt.transfer_parallel_files,
            ).to_dict()
            for run in info["runs"]
        ]  # fmt: skip

    # all_done: a failed absences job still registers the trial (the lattice's first candidate,
    # said why); a failed cell or geometry job leaves its files missing, and nothing registers
    @task(retries=0, trigger_rule=TriggerRule.ALL_DONE)
    def register_trial(info: dict, params=None) -> dict:
        """Register the new trial holding the cell, space group and refined geometry found."""
        registered = register_setup_trial(load_beamtime(), info, params["space_group"])
        print(f"trial {registered['trial']}: {registered['trial_params']['crystal']}")
        print(f"space group {registered['space_group']}: {registered['space_group_reason']}")
        return registered

    @task.short_circuit
    def reprocess_wanted(registered: dict, params=None) -> dict | None:
        """The sfx_reprocess conf, or nothing (skip) when no runs are to be reprocessed."""
        from operators.pipeline.setup import reprocess_conf

        runs = (params["reprocess_runs"] or "").strip()
        return reprocess_conf(registered, runs) if runs else None

    info = prepare()
    facility = FacilityAvailableSensor(
        task_id="wait_for_facility",
        system=beamtime.machine,
        sfapi_conn_id=beamtime.sfapi_conn_id,
        poll_seconds=beamtime.facility_poll_seconds,
    )
    jobs = [
        SfApiJobOperator(
            task_id=step,
            machine=beamtime.machine,
            script=prepared(f"{step}_script"),
            key=prepared(f"{step}_key"),
            workdir=prepared("hpc_setup"),
            sfapi_conn_id=beamtime.sfapi_conn_id,
            poll=beamtime.job_poll,
        )
        for step in SETUP_STEPS
    ]
    download = DownloadResultsOperator(
        task_id="download",
        machine=beamtime.machine,
        remote_dir=prepared("hpc_setup"),
        local_dir=prepared("local_setup"),
        files=SETUP_FILES,
        sfapi_conn_id=beamtime.sfapi_conn_id,
    )
    download_absences = absences_step(info, download.output)
    registered = register_trial(info)
    [download, download_absences] >> registered
    conf = reprocess_wanted(registered)
    reprocess = TriggerDagRunOperator(
        task_id="reprocess",
        trigger_dag_id="sfx_reprocess",
        conf="{{ ti.xcom_pull(task_ids='reprocess_wanted') }}",
    )
    info >> facility >> transfer(info) >> jobs[0] >> jobs[1] >> jobs[2] >> download
    conf >> reprocess


sfx_setup()
