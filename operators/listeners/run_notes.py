"""Airflow listener: give each finished ``sfx_run`` or ``sfx_live_run`` DAG run a one-line note (the Airflow 3
DAG-run note shown in the UI), e.g. "55/200 hits (27.5 %), 55 indexed, CC½ 0.986".

Tasks cannot write notes themselves; they leave the line as an XCom (key :data:`operators.pipeline.state.NOTE_KEY`:
``publish`` on success, the failing task's failure callback otherwise) and this listener,
running in the scheduler when the DAG run ends, turns the newest one into the run's note.
Registered by the ``sfxflow_run_notes`` plugin.
"""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy.orm import object_session

from operators.pipeline.state import NOTE_KEY

DAG_IDS = ("sfx_run", "sfx_live_run")


def _newest_note(session, dag_id: str, run_id: str) -> str | None:
    row = (
        session.query(XComModel)
        .filter_by(dag_id=dag_id, run_id=run_id, key=NOTE_KEY)
        .order_by(XComModel.timestamp.desc())
        .first()
    )
    return None if row is None else str(XComModel.deserialize_value(row))[:1000]


def _annotate(dag_run) -> None:
    if dag_run.dag_id not in DAG_IDS:
        return
    session = object_session(dag_run)
    if session is not None:  # the scheduler's own session: the note commits with the new state
        note = _newest_note(session, dag_run.dag_id, dag_run.run_id)
        if note is not None:
            dag_run.note = note
        return
    with create_session() as own:  # a run not attached to a session (e.g. dag.test())
        note, stored = (
            _newest_note(own, dag_run.dag_id, dag_run.run_id),
            own.get(DagRun, dag_run.id),
        )
        if note is not None and stored is not None:
            stored.note = note


@hookimpl
def on_dag_run_success(dag_run, msg: str) -> None:
    _annotate(dag_run)


@hookimpl
def on_dag_run_failed(dag_run, msg: str) -> None:
    _annotate(dag_run)
