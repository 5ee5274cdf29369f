"""What the demo and ``make up`` consoles say about pipelines, read from Airflow's REST API.

Each DAG run's outcome is reported once: succeeded, failed with a one-line reason (the failed
task and its error, from the task logs the stack writes), or stuck (unfinished for longer than a
threshold, with what it is waiting on).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import requests

from facility.beamtime_stack import RunningBeamtime

WATCHED_DAGS = ("sfx_run", "sfx_live_run", "sfx_dataset_merge", "sfx_reprocess")
FINISHED = ("success", "failed")
MERGE_GRACE = 30.0  # seconds a failed newest dataset merge is given to be followed by another


class News(NamedTuple):
    """A DAG run that finished or became stuck: `state` is success, failed or stuck."""

    dag_id: str
    run_id: str
    state: str
    line: str


class PipelineFailure(RuntimeError):
    """A pipeline the demo needs failed or never finished; the message says which and why."""


@dataclass
class PipelineWatch:
    """Report each watched DAG run's outcome once, and each stuck one once.

    Parameters
    ----------
    beamtime : the running stack to ask
    stuck_after : seconds a DAG run may stay queued or running before it is reported stuck
    """

    beamtime: RunningBeamtime
    stuck_after: float = 600.0
    dag_ids: tuple[str, ...] = WATCHED_DAGS
    _reported: set[tuple[str, str, str]] = field(default_factory=set)

    def poll(self) -> list[News]:
        """The DAG runs that finished or became stuck since the last poll."""
        found = []
        for dag_id in self.dag_ids:
            for run in self.beamtime.dag_runs(dag_id):
                news = self._news(dag_id, run)
                if news:
                    found.append(news)
        return found

    def _news(self, dag_id: str, run: dict) -> News | None:
        run_id, state = run["dag_run_id"], run["state"]
        if state in FINISHED:
            kind = state
        elif _age(run) > self.stuck_after:
            kind = "stuck"
        else:
            return None
        if (dag_id, run_id, kind) in self._reported:
            return None
        self._reported.add((dag_id, run_id, kind))
        if kind == "success":
            line = f"{dag_id} {run_id}: succeeded" + (f" ({run['note']})" if run["note"] else "")
        elif kind == "failed":
            line = f"{dag_id} {run_id}: FAILED, {self.beamtime.failure_reason(dag_id, run_id)}"
        else:
            line = (
                f"{dag_id} {run_id}: STUCK, {state} for {_duration(_age(run))}; "
                f"{self.beamtime.failure_reason(dag_id, run_id)}"
            )
        return News(dag_id, run_id, kind, line)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _age(run: dict) -> float:
    """Seconds since the DAG run started (or was queued)."""
    since = run["start_date"] or run["queued_at"] or run["run_after"]
    return (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds()


def wait_for_pipeline(bt: RunningBeamtime, run: str, timeout: float) -> dict:
    """Wait for the ``sfx_run`` pipeline of `run` (default trial); PipelineFailure unless it succeeds."""
    run_id = f"{run}__{bt.beamtime.trial}"
    try:
        dag_run = bt.wait_for_dag_run("sfx_run", run_id, timeout=timeout)
    except TimeoutError:
        raise PipelineFailure(
            f"the pipeline of run {run} did not finish within {timeout:.0f} s "
            f"({bt.failure_reason('sfx_run', run_id)})"
        ) from None
    if dag_run["state"] != "success":
        raise PipelineFailure(
            f"the pipeline of run {run} failed: {bt.failure_reason('sfx_run', run_id)}"
        )
    return dag_run


def merged_runs(stats_file: Path) -> set[str]:
    """Names of the runs a merge's ``merge_stats.json`` covers (empty while it does not exist)."""
    try:
        stats = json.loads(stats_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return set()
    return {Path(result).name for result in stats.get("results", [])}


def wait_for_dataset_merges(bt: RunningBeamtime, runs: list[str], timeout: float) -> list[Path]:
    """Wait until every dataset's merged result covers `runs` and its merge is recorded.

    Waits on the merge's own output (the downloaded ``merge_stats.json`` lists the runs it
    merged), not on times: a dataset merge is queued before the run that triggered it has
    finished. Returns the datasets' result folders; PipelineFailure names a failed merge.
    """
    folders = [
        Path(bt.beamtime.local_dataset_dir(d, bt.beamtime.trial)) for d in bt.beamtime.datasets
    ]
    deadline = time.monotonic() + timeout
    failed_since = None
    while True:
        try:
            dag_runs = bt.dag_runs("sfx_dataset_merge")
        except requests.Timeout:  # a loaded api-server: counted as unfinished, asked again
            dag_runs = [{"dag_run_id": "?", "state": "unknown"}]
        latest = dag_runs[:1]
        unfinished = [r for r in dag_runs if r["state"] not in FINISHED]
        missing = [f for f in folders if not set(runs) <= merged_runs(f / "merge_stats.json")]
        if not missing and not unfinished:
            return folders
        # the newest merge failed and none followed within a grace period (one may be queued
        # by the scheduler a few seconds after the run that triggers it)
        if latest and latest[0]["state"] == "failed" and not unfinished:
            failed_since = failed_since or time.monotonic()
            if time.monotonic() - failed_since > MERGE_GRACE:
                run_id = latest[0]["dag_run_id"]
                reason = bt.failure_reason("sfx_dataset_merge", run_id)
                raise PipelineFailure(f"the dataset merge {run_id} failed: {reason}")
        else:
            failed_since = None
        if time.monotonic() > deadline:
            raise PipelineFailure(
                f"no merged result of {', '.join(runs)} in {', '.join(map(str, missing))} "
                f"after {timeout:.0f} s (dataset merges unfinished: "
                f"{', '.join(r['dag_run_id'] + '=' + r['state'] for r in unfinished) or 'none'})"
            )
        time.sleep(1.0)
