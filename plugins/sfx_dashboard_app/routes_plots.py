"""The data of the dashboard's browser-drawn plots that no other JSON carries: the weather."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from kernels.resultsdb import ResultsDB

from .auth import api_user
from .data import database
from .plots import weather_lanes

router = APIRouter(prefix="/api", dependencies=[Depends(api_user)])


@router.get("/runs/{run_id}/weather")
def weather_json(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    """Plain JSON types, sent as built (thousands of small lists through FastAPI's encoder cost
    more than the binning)."""
    names = db.run_name(run_id)
    segments = db.weather(run_id, trial_id)
    if names is None or not segments:
        raise HTTPException(404, f"no processed images for run id {run_id}, trial id {trial_id}")
    return JSONResponse(weather_lanes(segments))
