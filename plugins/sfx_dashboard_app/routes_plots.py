"""The dashboard's PNG plots (matplotlib is imported only once a plot is asked for)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from kernels.resultsdb import ResultsDB

from .auth import api_user
from .data import database

router = APIRouter(prefix="/plots", dependencies=[Depends(api_user)])


def plain_title(text: str) -> str:
    """A name as literal matplotlib text ('$' would start math mode)."""
    return text.replace("$", r"\$")


@router.get("/weather.png")
def weather_plot(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    names = db.run_name(run_id)
    segments = db.weather(run_id, trial_id)
    if names is None or not segments:
        raise HTTPException(404, f"no processed images for run id {run_id}, trial id {trial_id}")
    from . import plots  # matplotlib only once a plot is asked for

    title = plain_title(f"{names[0]} {names[1]}: computational weather")
    return Response(plots.weather_png(segments, title), media_type="image/png")


@router.get("/shells.png")
def shells_plot(dataset_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    stats = db.merge_stats(trial_id, dataset_id=dataset_id)
    if stats is None or not stats["shells"]:
        raise HTTPException(
            404, f"no merged statistics for dataset id {dataset_id}, trial id {trial_id}"
        )
    from . import plots

    return Response(
        plots.shells_png(stats["shells"], "merged statistics per resolution shell"),
        media_type="image/png",
    )
