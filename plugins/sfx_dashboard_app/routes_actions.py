"""Act from the dashboard: tag runs, define datasets, start a reprocess (``/actions``).

Every write is refused unless Airflow's auth manager grants the user that change
(:mod:`.permissions`) and the request comes from a dashboard page of the same login
(:mod:`.csrf`). Changes to Airflow (the Variable, a DAG run, an asset event) go through its REST
API with the user's own JWT (:mod:`.airflow_rest`); every change is written to the results DB's
audit log with who made it and when, and shown on the page.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pymysql
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from kernels.io.marker import run_order
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE, Beamtime
from operators.pipeline.run import merged_asset_uri

from . import actions_page
from .actions import ActionError, checked_names, reprocess_conf, settings_with_dataset
from .airflow_rest import AirflowRefused, AirflowREST, default_base_url
from .auth import bearer_scheme, page_user
from .csrf import check_same_site, csrf_token
from .data import database, trial_by_id
from .permissions import (
    EDIT_SETTINGS,
    REPROCESS,
    REPROCESS_DAG,
    Actor,
    actor,
    allowed_actions,
    require,
    session_jwt,
)

router = APIRouter()
JS = (Path(__file__).parent / "actions.js").read_text()
ENV_VARIABLE = f"AIRFLOW_VAR_{VARIABLE.upper()}"


class TagRequest(BaseModel):
    experiment: str
    run_ids: list[int] = Field(min_length=1, max_length=1000)
    tag: str


class DatasetRequest(BaseModel):
    experiment: str
    name: str
    tags: list[str] = Field(min_length=1, max_length=20)
    splits: list[str] = Field(default_factory=list, max_length=10)  # per-event splits


class ReprocessRequest(BaseModel):
    experiment: str
    run_ids: list[int] = Field(min_length=1, max_length=1000)
    trial: str
    trial_params: dict


def audit_rows(db: ResultsDB, experiment: str) -> list[dict]:
    """The experiment's audit log; empty while no change created it (a DB not yet migrated)."""
    try:
        return db.actions(experiment)
    except (sqlite3.OperationalError, pymysql.err.ProgrammingError):
        return []


@router.get("/actions", response_class=HTMLResponse)
def actions_view(
    request: Request,
    experiment: str | None = None,
    trial_id: int | None = None,
    user=Depends(page_user),
    credentials=Depends(bearer_scheme),
    db: ResultsDB = Depends(database),
):
    experiments, trials = db.experiments(), db.trials()
    experiment = experiment if experiment is not None else next(iter(experiments), None)
    if experiment is None or experiment not in experiments:
        raise HTTPException(404, f"no experiment {experiment!r}")
    trial = trial_by_id(db, trial_id) if trial_id is not None else next(iter(trials), None)
    if trial is None:
        raise HTTPException(404, "no trial recorded yet")
    tags = db.experiment_run_tags(experiment)  # one query, not one per run
    runs = [  # no image counts here: the page stays fast for a beamtime of millions of images
        {**row, "tags": tags.get(row["run_id"], [])}
        for row in sorted(db.run_states(experiment, trial["id"]), key=lambda r: run_order(r["run"]))
    ]
    may = allowed_actions(user)
    return actions_page.actions_page(
        experiment,
        db.get_trial(trial["name"], trial["version"]),
        runs,
        db.datasets(experiment),
        audit_rows(db, experiment),
        may,
        csrf_token(session_jwt(request, credentials)) if may else "",
    )


def writable_db(request: Request):
    """A read-write results DB session for one change (migrations applied: the audit log)."""
    with ResultsDB(request.app.state.db_url, retry_for=5.0) as db:
        yield db


@dataclass(frozen=True)
class Writer:
    """A user allowed to make one change, and their own client of Airflow's REST API."""

    actor: Actor
    rest: AirflowREST


def allowed_to(action: str):
    """Dependency: 403 unless the user may take ``action`` and the request comes from this very
    site. It runs before the body is read, so a refused request learns nothing of its checks."""

    async def writer(request: Request, who: Actor = Depends(actor)) -> Writer:
        require(who, action)
        check_same_site(request, who.jwt)
        base_url = request.app.state.airflow_url or default_base_url()
        return Writer(who, AirflowREST(base_url, who.jwt))

    return writer


def experiment_runs(db: ResultsDB, experiment: str, run_ids: list[int]) -> list[tuple[int, str]]:
    """(run id, run name) of each id, which must be a run of ``experiment`` (else 404)."""
    found = []
    for run_id in sorted(set(run_ids)):
        names = db.run_name(run_id)
        if names is None or names[0] != experiment:
            raise HTTPException(404, f"no run with id {run_id} in experiment {experiment!r}")
        found.append((run_id, names[1]))
    return found


def request_merges(
    rest: AirflowREST,
    db: ResultsDB,
    experiment: str,
    run_ids: list[int],
    who: str,
    one_per_trial: bool = False,
) -> str:
    """Announce the runs' published results again, so ``sfx_dataset_merge`` re-merges their
    datasets. ``one_per_trial``: the runs are one dataset's, and one run of it per trial is
    enough to re-merge all of it (not one REST call per run of a large dataset)."""
    published = db.published_trials(run_ids)
    if one_per_trial:
        published = list({trial: (run, trial) for run, trial in reversed(published)}.values())
    if not published:
        return "no published results to re-merge yet"
    try:  # the change itself is made: a refused re-merge is part of its outcome, not a failure
        asset_id = rest.asset_id(merged_asset_uri(experiment))
        if asset_id is None:
            return f"no re-merge: no DAG declares {merged_asset_uri(experiment)}"
        for run, trial in published:
            rest.asset_event(asset_id, {"run": run, "trial": trial, "requested_by": who})
    except AirflowRefused as exc:
        return f"re-merge not requested: {exc}"
    return f"re-merge requested for {len(published)} run result(s)"


def done(db: ResultsDB, who: Actor, experiment: str, action: str, detail: dict, outcome: str):
    """Record the change in the audit log and answer with what happened."""
    audit_id = db.record_action(who.username, experiment, action, detail, outcome)
    return {"ok": True, "outcome": outcome, "audit_id": audit_id}


def editable_variable(rest: AirflowREST) -> str | None:
    """The beamtime Variable's text in Airflow's DB (None: unset), 409 when the environment
    shadows it (an edit there would never be read)."""
    if ENV_VARIABLE in os.environ:
        raise HTTPException(
            409,
            f"the beamtime settings come from the environment ({ENV_VARIABLE}), which "
            f"Airflow reads before its Variables: move them to Admin → Variables {VARIABLE} to edit them here",
        )
    return rest.variable(VARIABLE)


def save_settings(rest: AirflowREST, raw: str | None, new: str, experiment: str) -> Beamtime:
    """Write the Variable's new text, once it is the settings of ``experiment`` (else 409)."""
    active = Beamtime.from_json(new)
    if active.experiment != experiment:
        raise HTTPException(
            409, f"the active beamtime is experiment {active.experiment!r}, not {experiment!r}"
        )
    rest.set_variable(VARIABLE, new, exists=raw is not None)
    return active


@router.post("/actions/tag")
def tag_runs(
    body: TagRequest,
    writer: Writer = Depends(allowed_to(EDIT_SETTINGS)),
    db: ResultsDB = Depends(writable_db),
):
    who, rest = writer.actor, writer.rest
    tag = checked_names("tag", [body.tag])[0]
    runs = experiment_runs(db, body.experiment, body.run_ids)
    for run_id, _ in runs:
        db.tag_run(run_id, tag)
    outcome = f"tagged {len(runs)} run(s) {tag}; " + request_merges(
        rest, db, body.experiment, [i for i, _ in runs], who.username
    )
    return done(
        db, who, body.experiment, "tag", {"tag": tag, "runs": [n for _, n in runs]}, outcome
    )


@router.post("/actions/dataset")
def define_dataset(
    body: DatasetRequest,
    writer: Writer = Depends(allowed_to(EDIT_SETTINGS)),
    db: ResultsDB = Depends(writable_db),
):
    who, rest = writer.actor, writer.rest
    raw = editable_variable(rest)
    new = settings_with_dataset(raw, body.name, body.tags, body.splits)
    active = save_settings(rest, raw, new, body.experiment)
    tags, splits = active.datasets[body.name], active.dataset_splits.get(body.name, [])
    dataset_id = db.ensure_dataset(body.experiment, body.name, tags)
    members = [run_id for run_id, _ in db.dataset_runs(body.experiment, body.name)]
    outcome = (
        f"dataset {body.name} = runs tagged {' + '.join(tags)} ({len(members)} now)"
        + (f", split by {'; '.join(splits)}; " if splits else "; ")
        + request_merges(rest, db, body.experiment, members, who.username, one_per_trial=True)
    )
    return done(
        db,
        who,
        body.experiment,
        "dataset",
        {"dataset": body.name, "dataset_id": dataset_id, "tags": tags, "splits": splits},
        outcome,
    )


@router.post("/actions/reprocess")
def reprocess(
    body: ReprocessRequest,
    writer: Writer = Depends(allowed_to(REPROCESS)),
    db: ResultsDB = Depends(writable_db),
):
    who, rest = writer.actor, writer.rest
    runs = experiment_runs(db, body.experiment, body.run_ids)
    conf = reprocess_conf([name for _, name in runs], body.trial, body.trial_params)
    started = rest.trigger(
        REPROCESS_DAG, conf, note=f"requested from the dashboard by {who.username}"
    )
    outcome = f"started {REPROCESS_DAG} run {started['dag_run_id']}"
    detail = {
        "trial": conf["trial"],
        "runs": conf["runs"],
        "trial_params": conf["trial_params"],
        "dag_run_id": started["dag_run_id"],
    }
    return done(db, who, body.experiment, "reprocess", detail, outcome)


@router.get("/actions.js", dependencies=[Depends(actor)])
def script():
    return Response(JS, media_type="text/javascript")


def refused_by_airflow(request: Request, exc: Exception) -> Response:
    """Airflow's own refusal (e.g. 403 for missing rights) passed on with its status."""
    assert isinstance(exc, AirflowRefused)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def refused_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=422)


EXCEPTION_HANDLERS = {AirflowRefused: refused_by_airflow, ActionError: refused_request}
