"""Reprocess runs with a trial: from the UI ("Trigger DAG w/ config") or ``airflow backfill create``.

* Manual: ``{"trial": "t2", "trial_params": {...}, "runs": "1-5"}`` reprocesses those runs;
  ``"runs": "all"`` every concluded run; an empty ``runs`` starts nothing. Unknown conf keys, bad
  trial parameters and runs that do not exist or are not concluded are refused before anything
  starts (the DAG run fails, saying what to change).
* Backfill: ``airflow backfill create --dag-id sfx_reprocess --from-date D1 --to-date D2
  --reprocess-behavior completed --dag-run-conf '{"trial": "t2", "trial_params": {...}}'``
  reprocesses, interval by interval, every run concluded inside the interval (``completed``:
  the intervals the scheduled sweep already ran are run again with the new conf).
* Scheduled (each interval, hourly by default, with the beamtime's default trial): a sweep that starts the pipeline of any
  concluded run that never got one (e.g. its event was lost); runs already processed are skipped,
  and so are runs acquired live (``sfx_live_run`` is theirs).

Each run becomes a ``sfx_run`` DAG run ``<run>__<trial>``: a trial never overwrites another's results.
``start_pipeline`` waits (deferred, no worker slot) for the pipelines it started: this DAG run
fails when one of them fails, so a failed reprocessing is never shown green.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

from operators.pipeline.live import without_live_runs
from operators.pipeline.reprocess import (
    ALL_RUNS,
    check_conf_keys,
    run_requests,
    runs_to_reprocess,
)
from operators.pipeline.trial_params import trial_params_description, validated_trial_params
from operators.settings import load_beamtime

beamtime = load_beamtime()


@dag(
    dag_id="sfx_reprocess",
    # real hourly data intervals: a backfill of an interval reprocesses the runs concluded in it
    schedule=CronDataIntervalTimetable(beamtime.reprocess_cron, timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    tags=["sfxflow"],
    params={
        "trial": Param(beamtime.trial, type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
        "trial_params": Param(
            beamtime.trial_params,
            type="object",
            description=trial_params_description(),
        ),
        # null allowed: the form may leave it empty (a required string would be refused)
        "runs": Param(
            "",
            type=["null", "string"],
            pattern=rf"^({ALL_RUNS}|[0-9,\- ]*)$",
            description=f'run numbers, e.g. 1-3,7, or "{ALL_RUNS}" for every concluded run; '
            "empty starts nothing (scheduled and backfill runs: the runs concluded in their "
            "interval)",
        ),
        "ranks": Param(beamtime.ranks, type="integer", minimum=1, maximum=4096),
    },
    doc_md=__doc__,
)
def sfx_reprocess():
    @task
    def select_runs(
        params=None, data_interval_start=None, data_interval_end=None, dag_run=None
    ) -> list[dict]:
        """Check the whole request, then name the runs; nothing starts if anything is wrong."""
        check_conf_keys(dag_run.conf)
        validated_trial_params(params["trial_params"])
        bt = load_beamtime()
        manual = dag_run.run_type == "manual"
        runs = runs_to_reprocess(
            bt.exp_dir, params["runs"], manual, data_interval_start, data_interval_end
        )
        if dag_run.run_type == "scheduled":  # the sweep: live runs have their own pipeline
            runs = without_live_runs(bt.exp_dir, runs)
        if not runs and manual:
            print(f'no runs given: nothing started (give e.g. "runs": "1-3,7" or "{ALL_RUNS}")')
        else:
            print(f"trial {params['trial']}: {len(runs)} run(s): {', '.join(runs) or '-'}")
        return run_requests(runs, params["trial"], params["trial_params"], params["ranks"])

    TriggerDagRunOperator.partial(
        task_id="start_pipeline",
        trigger_dag_id="sfx_run",
        skip_when_already_exists=True,
        wait_for_completion=True,
        deferrable=True,
        poke_interval=5,
        failed_states=["failed"],
    ).expand_kwargs(select_runs())


sfx_reprocess()
