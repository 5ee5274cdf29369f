"""The dashboard's JSON, polled by its pages for live progress."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kernels.resultsdb import ResultsDB

from .auth import api_user
from .data import database, pipelines, run_rows

router = APIRouter(prefix="/api", dependencies=[Depends(api_user)])


def finite(value):
    """JSON cannot carry NaN/inf: send null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


@router.get("/runs")
def runs_json(experiment: str, trial_id: int, db: ResultsDB = Depends(database)) -> JSONResponse:
    """Plain JSON types only, sent as they are: FastAPI's generic encoder walked each of 500
    runs' values again and took as long as the query (bench/dashboard_bench.py)."""
    rows = run_rows(db, experiment, trial_id)
    return JSONResponse(
        {
            "experiment": experiment,
            "trial_id": trial_id,
            "runs": rows,
            # by run id: pipeline state in words, task log of a failure, touched by the trial at all
            "pipelines": {str(k): v for k, v in pipelines(db, trial_id, rows).items()},
            "merged_at": db.merges_updated(trial_id),
        }
    )


@router.get("/runs/{run_id}/progress")
def progress_json(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    return db.image_counts(run_id, trial_id)


@router.get("/datasets")
def datasets_json(experiment: str, trial_id: int, db: ResultsDB = Depends(database)):
    return {
        "datasets": [
            {**d, "stats": finite(db.merge_stats(trial_id, dataset_id=d["id"]))}
            for d in db.datasets(experiment)
        ]
    }
