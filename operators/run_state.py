"""Task callbacks of ``sfx_run``: record the pipeline state of the run and trial as steps go.

Each task's start sets the state of its step (:data:`operators.pipeline.state.TASK_STATES`);
a task that fails for good sets "failed" with the one-line reason and a link to its log. The
``prepare`` task records "waiting" itself once run and trial are registered, and ``publish``
records "published". Recording never fails a step: a DB hiccup is logged and the run goes on.
"""

from __future__ import annotations

import logging

from kernels.resultsdb import ResultsDB
from operators.pipeline.state import FAILED, NOTE_KEY, TASK_STATES, WAITING, failure_reason
from operators.settings import load_beamtime

log = logging.getLogger(__name__)


def _record(context, state: str, detail: str = "", log_url: str = "") -> None:
    info = context["ti"].xcom_pull(task_ids="prepare")
    if not info:  # prepare failed before registering the run: the failure is the DAG run's own
        return
    try:
        with ResultsDB(load_beamtime().results_db, retry_for=10.0) as db:
            db.record_pipeline_state(info["run_id"], info["trial_id"], state, detail, log_url)
    except Exception:  # the state is a courtesy; the step's own outcome is what counts
        log.warning("could not record pipeline state %s", state, exc_info=True)


def record_step_started(context) -> None:
    """``on_execute_callback``: the run is now in the state of this task's step."""
    state = TASK_STATES.get(context["ti"].task_id)
    if state is not None:
        _record(context, state)


def record_waiting(context, why: str) -> None:
    """The run waits for the facility: record why (the outage or the status), for the dashboard."""
    _record(context, WAITING, why)


def record_step_failed(context) -> None:
    """``on_failure_callback``: the run failed at this task, for this reason (see its log)."""
    ti = context["ti"]
    reason = f"{ti.task_id}: {failure_reason(context.get('exception'))}"
    ti.xcom_push(key=NOTE_KEY, value=f"failed at {reason}")  # the DAG run's note
    _record(context, FAILED, reason, getattr(ti, "log_url", "") or "")
