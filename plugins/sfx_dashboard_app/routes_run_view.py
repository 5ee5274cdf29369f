"""The run view's data: per-frame series, rates, cell histograms, reasons, state, merge."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException

from kernels.resultsdb import ResultsDB
from kernels.resultsdb.images import CELL_COLUMNS

from .auth import api_user
from .data import database
from .routes_api import finite
from .run_view_data import (
    FRAME_COLUMNS,
    bucket_size,
    rolling_window,
    run_state,
    run_view,
    thinning,
)

router = APIRouter(prefix="/api", dependencies=[Depends(api_user)])


@router.get("/runs/{run_id}/view")
def run_view_json(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    times = db.run_times(run_id)
    if times is None:
        raise HTTPException(404, f"no run with id {run_id}")
    reasons = db.reason_counts(run_id, trial_id)
    images = sum(n for _, _, n, _ in reasons)
    buckets = db.image_buckets(run_id, trial_id, bucket_size(rolling_window(images)))
    frame_rows = db.image_series(run_id, trial_id, FRAME_COLUMNS, every=thinning(images))
    cell_rows = db.image_series(run_id, trial_id, CELL_COLUMNS, refined_only=True)
    stats = db.merge_stats(trial_id, run_id=run_id)
    last_image = max((newest for *_, newest in reasons), default=None)
    record = db.pipeline_states(trial_id).get(run_id)
    return {
        "run_id": run_id,
        "trial_id": trial_id,
        "state": run_state(record, times[1], stats is not None, last_image, time.time(), images),
        **run_view(images, buckets, frame_rows, cell_rows, reasons),
        "merge": finite(stats),
    }
