"""How the dashboard reads the results DB: one read-only session per request, rows in run order."""

from __future__ import annotations

from fastapi import HTTPException, Request

from kernels.io.marker import run_order
from kernels.resultsdb import ResultsDB
from operators.pipeline.state import state_words


def database(request: Request):
    """A read-only results DB session for one request (the app's ``state.db_url``)."""
    with ResultsDB(request.app.state.db_url, retry_for=5.0, read_only=True) as db:
        yield db


def trial_by_id(db: ResultsDB, trial_id: int) -> dict:
    """The trial with that id, or 404 naming it."""
    for trial in db.trials():
        if trial["id"] == trial_id:
            return trial
    raise HTTPException(404, f"no trial with id {trial_id}")


def run_rows(db: ResultsDB, experiment: str, trial_id: int) -> list[dict]:
    """The runs table of an experiment and trial, in the project's run order (r9999 before r10000)."""
    return sorted(db.run_table(experiment, trial_id), key=lambda row: run_order(row["run"]))


def pipelines(db: ResultsDB, trial_id: int, rows: list[dict]) -> dict[int, dict]:
    """run id -> the pipeline's state in words (``pipeline``), the task log of a failure
    (``log_url``) and whether the trial touched the run at all (``touched``)."""
    states = db.pipeline_states(trial_id)
    view = {}
    for row in rows:
        record = states.get(row["run_id"])
        touched = record is not None or row["images"] > 0 or row["state"] != "new"
        if record is None and touched:  # processed before pipeline states were recorded
            record = {"state": "published" if row["turnaround_s"] is not None else "processing"}
        view[row["run_id"]] = {
            "pipeline": state_words(record, row["images"]),
            "log_url": (record or {}).get("log_url") or "",
            "touched": touched,
        }
    return view
