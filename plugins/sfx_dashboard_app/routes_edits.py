"""Undo and settle from the dashboard: take a tag off runs, delete a dataset, make a trial the
experiment's default (``POST /actions/untag``, ``/actions/delete-dataset``,
``/actions/default-trial``).

The same guards as :mod:`.routes_actions` (Airflow's rights for the change, the same-site check,
the user's own JWT for Airflow, the audit log); these change what the pipeline reads, so the
rights are those of editing the beamtime settings.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from kernels.resultsdb import ResultsDB, UnknownNameError

from .actions import settings_with_default_trial, settings_without_dataset
from .data import trial_by_id
from .permissions import EDIT_SETTINGS
from .routes_actions import (
    TagRequest,
    Writer,
    allowed_to,
    done,
    editable_variable,
    experiment_runs,
    request_merges,
    save_settings,
    writable_db,
)

router = APIRouter()


class DatasetName(BaseModel):
    experiment: str
    name: str


class TrialChoice(BaseModel):
    experiment: str
    trial_id: int


def datasets_holding(db: ResultsDB, experiment: str, tag: str) -> list[str]:
    """Names of the experiment's datasets whose runs must carry ``tag``."""
    return [d["name"] for d in db.datasets(experiment) if tag in d["tags"]]


@router.post("/actions/untag")
def untag_runs(
    body: TagRequest,
    writer: Writer = Depends(allowed_to(EDIT_SETTINGS)),
    db: ResultsDB = Depends(writable_db),
):
    """Take the tag off the runs; the datasets that needed it are re-merged without them."""
    who = writer.actor
    runs = experiment_runs(db, body.experiment, body.run_ids)
    removed = [name for run_id, name in runs if db.untag_run(run_id, body.tag)]
    if not removed:
        raise HTTPException(404, f"none of the chosen runs carries tag {body.tag!r}")
    outcomes = [f"took tag {body.tag} off {len(removed)} run(s)"]
    for dataset in datasets_holding(db, body.experiment, body.tag):
        members = [run_id for run_id, _ in db.dataset_runs(body.experiment, dataset)]
        merge = request_merges(
            writer.rest, db, body.experiment, members, who.username, one_per_trial=True
        )
        outcomes.append(f"dataset {dataset}: {merge}")
    detail = {"tag": body.tag, "runs": removed}
    return done(db, who, body.experiment, "untag", detail, "; ".join(outcomes))


@router.post("/actions/delete-dataset")
def delete_dataset(
    body: DatasetName,
    writer: Writer = Depends(allowed_to(EDIT_SETTINGS)),
    db: ResultsDB = Depends(writable_db),
):
    """Forget the dataset in the beamtime settings (no more merges) and in the results DB (its
    merged statistics go too); its runs and their tags stay."""
    rest = writer.rest
    raw = editable_variable(rest)
    new = settings_without_dataset(raw, body.name)
    if new is not None:
        save_settings(rest, raw, new, body.experiment)
    try:
        dataset_id = db.delete_dataset(body.experiment, body.name)
    except UnknownNameError:
        if new is None:  # neither the settings nor the results DB knew it
            raise HTTPException(404, f"no dataset {body.name!r} in {body.experiment!r}") from None
        dataset_id = None  # defined but never merged
    where = "the beamtime settings and " if new is not None else ""
    outcome = f"deleted dataset {body.name} from {where}the results DB"
    detail = {"dataset": body.name, "dataset_id": dataset_id}
    return done(db, writer.actor, body.experiment, "delete-dataset", detail, outcome)


@router.post("/actions/default-trial")
def make_default_trial(
    body: TrialChoice,
    writer: Writer = Depends(allowed_to(EDIT_SETTINGS)),
    db: ResultsDB = Depends(writable_db),
):
    """The trial becomes the beamtime's: new runs and the reprocess sweep use it."""
    rest = writer.rest
    found = trial_by_id(db, body.trial_id)
    trial = db.get_trial(found["name"], found["version"])
    raw = editable_variable(rest)
    save_settings(rest, raw, settings_with_default_trial(raw, trial), body.experiment)
    outcome = f"trial {trial['name']} is the default of {body.experiment} for new runs"
    detail = {"trial": trial["name"], "trial_id": trial["id"], "trial_params": trial["params"]}
    return done(db, writer.actor, body.experiment, "default-trial", detail, outcome)
