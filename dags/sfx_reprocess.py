"""Reprocess runs with a trial: from the UI ("Trigger DAG w/ config") or ``airflow backfill create``.

* Manual: ``{"trial": "t2", "trial_params": {...}, "runs": "1-5"}`` reprocesses those runs.
* Backfill: ``airflow backfill create --dag-id sfx_reprocess --from-date D1 --to-date D2
  --reprocess-behavior completed --dag-run-conf '{"trial": "t2", "trial_params": {...}}'``
  reprocesses, interval by interval, every run concluded inside the interval (``completed``:
  the intervals the scheduled sweep already ran are run again with the new conf).
* Scheduled (each interval, hourly by default, with the beamtime's default trial): a sweep that starts the pipeline of any
  concluded run that never got one (e.g. its event was lost); runs already processed are skipped.

Each run becomes a ``sfx_run`` DAG run ``<run>__<trial>``: a trial never overwrites another's results.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

from operators.pipeline.reprocess import concluded_runs, parse_run_range, run_requests
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
        "trial_params": Param(beamtime.trial_params, type="object"),
        "runs": Param(
            "",
            type="string",
            pattern=r"^[0-9,\- ]*$",
            description="run numbers, e.g. 1-3,7; empty: runs concluded in this interval",
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
        bt = load_beamtime()
        if params["runs"].strip():
            runs = parse_run_range(params["runs"])
        elif dag_run.run_type == "manual":
            runs = concluded_runs(bt.exp_dir)
        else:
            runs = concluded_runs(bt.exp_dir, data_interval_start, data_interval_end)
        print(f"trial {params['trial']}: {len(runs)} run(s): {', '.join(runs) or '-'}")
        return run_requests(runs, params["trial"], params["trial_params"], params["ranks"])

    TriggerDagRunOperator.partial(
        task_id="start_pipeline",
        trigger_dag_id="sfx_run",
        skip_when_already_exists=True,
    ).expand_kwargs(select_runs())


sfx_reprocess()
