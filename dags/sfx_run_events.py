"""Run events -> one pipeline per (run, trial), within seconds, no polling DAG.

The run-events trigger (folder watcher or Redis stream) feeds an Asset through an AssetWatcher.
Events that arrive together are handled together. A run-started event (a live DAQ) becomes a
``sfx_live_run`` run; a run-concluded event becomes a ``sfx_run`` run unless the run went live.
Both have the deterministic id ``<run>__<trial>``, so a replayed event never starts a second
pipeline.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, AssetWatcher, dag, task

from operators.pipeline.live import split_events
from operators.pipeline.reprocess import run_requests
from operators.settings import load_beamtime
from operators.triggers.run_concluded import RunConcludedTrigger

beamtime = load_beamtime()
concluded_runs = Asset(
    f"sfxflow://{beamtime.experiment}/concluded-runs",
    watchers=[
        AssetWatcher(
            name=f"{beamtime.experiment}_run_concluded",
            trigger=RunConcludedTrigger(
                exp_dir=beamtime.exp_dir, state_dir=beamtime.state_dir, source=beamtime.event_source
            ),
        )
    ],
)


@dag(
    dag_id="sfx_run_events",
    schedule=[concluded_runs],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sfxflow"],
    doc_md=__doc__,
)
def sfx_run_events():
    @task
    def new_runs(live: bool, triggering_asset_events=None) -> list[dict]:
        """Requests for the runs to start live (``live``) or post-run, from these events."""
        runs = split_events([e.extra["payload"] for e in triggering_asset_events[concluded_runs]])
        bt = load_beamtime()
        return run_requests(runs[0] if live else runs[1], bt.trial, bt.trial_params, bt.ranks)

    TriggerDagRunOperator.partial(
        task_id="start_pipeline",
        trigger_dag_id="sfx_run",
        skip_when_already_exists=True,
    ).expand_kwargs(new_runs(False))
    TriggerDagRunOperator.partial(
        task_id="start_live_pipeline",
        trigger_dag_id="sfx_live_run",
        skip_when_already_exists=True,
    ).expand_kwargs(new_runs.override(task_id="new_live_runs")(True))


sfx_run_events()
