"""Dataset progress: its statistics against crystals, and the crystals still needed for a target.

The model and how the estimate is made: :mod:`.progress_model`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse

from kernels.io.marker import run_order
from kernels.resultsdb import ResultsDB

from . import progress_page
from .auth import api_user, page_user
from .data import database, trial_by_id
from .progress_model import METRICS, RunPoint, estimate_text, progress, shell_at
from .routes_api import finite

router = APIRouter()
DEFAULT_TARGETS = {
    "cc_half": 0.3,
    "completeness": 0.99,
    "multiplicity": 10.0,
    "mean_i_over_sigma": 2.0,
}


def dataset_by_id(db: ResultsDB, experiment: str, dataset_id: int) -> dict:
    """The dataset with that id in the experiment, or 404 naming it."""
    for dataset in db.datasets(experiment):
        if dataset["id"] == dataset_id:
            return dataset
    raise HTTPException(404, f"no dataset with id {dataset_id} in experiment {experiment!r}")


def default_d(dataset_stats: dict | None, merges: list[dict]) -> float | None:
    """The resolution looked at unless the user names one: the middle of the dataset merge's
    outer shell, else of the runs' outer shells (their median)."""
    shells = [dataset_stats["shells"][-1]] if dataset_stats and dataset_stats["shells"] else []
    shells = shells or sorted(
        (m["shells"][-1] for m in merges if m["shells"]), key=lambda s: s["d_min"]
    )
    if not shells:
        return None
    outer = shells[len(shells) // 2]
    return (outer["d_min"] + outer["d_max"]) / 2


def crystals_of(db: ResultsDB, run_id: int, trial_id: int, merge: dict) -> int:
    """Crystals in a run's merge: the images it merged, else (older rows) its integrated images."""
    images = merge["overall"].get("images")
    return int(images) if images is not None else db.image_counts(run_id, trial_id)["integrated"]


def dataset_progress(
    db: ResultsDB, experiment: str, trial_id: int, dataset_id: int, metric: str, target, d
) -> dict:
    """Everything the progress page shows for one dataset and trial."""
    if metric not in METRICS:
        raise HTTPException(422, f"metric must be one of {sorted(METRICS)}, not {metric!r}")
    dataset = dataset_by_id(db, experiment, dataset_id)
    stats = db.merge_stats(trial_id, dataset_id=dataset_id)
    merges = db.run_merges(trial_id)
    runs = sorted(db.dataset_runs(experiment, dataset["name"]), key=lambda r: run_order(r[1]))
    merged_runs = [(run_id, name) for run_id, name in runs if run_id in merges]
    d = d if d is not None else default_d(stats, [merges[r] for r, _ in merged_runs])
    target = target if target is not None else DEFAULT_TARGETS[metric]
    points = [
        RunPoint(name, crystals_of(db, run_id, trial_id, merges[run_id]),
                 None if d is None else shell_at(merges[run_id]["shells"], d))
        for run_id, name in merged_runs
    ]  # fmt: skip
    view = {
        "dataset": dataset,
        "d": d,
        "runs": len(runs),
        "merged_runs": len(merged_runs),
        **progress(points, metric, float(target)),
        "dataset_merge": stats,
        "splits": db.split_stats(trial_id, dataset_id),
        "dataset_shell": None if stats is None or d is None else shell_at(stats["shells"], d),
    }
    return finite({**view, "estimate": estimate_text(view)})


@router.get("/api/datasets/{dataset_id}/progress", dependencies=[Depends(api_user)])
def progress_json(
    dataset_id: int,
    experiment: str,
    trial_id: int,
    metric: str = "cc_half",
    target: float | None = None,
    d: float | None = None,
    db: ResultsDB = Depends(database),
):
    return dataset_progress(db, experiment, trial_id, dataset_id, metric, target, d)


@router.get("/progress", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def progress_view(
    dataset_id: int,
    experiment: str,
    trial_id: int,
    metric: str = "cc_half",
    target: float | None = None,
    d: float | None = None,
    db: ResultsDB = Depends(database),
):
    view = dataset_progress(db, experiment, trial_id, dataset_id, metric, target, d)
    return progress_page.progress_page(experiment, trial_by_id(db, trial_id), view)
