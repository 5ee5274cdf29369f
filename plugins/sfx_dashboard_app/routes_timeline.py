"""The beamtime timeline: every run of an experiment over time with its hit and indexing
rates, its tags (samples are tagged: a sample's name is a tag) and whether it is merged."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse

from kernels.resultsdb import ResultsDB

from .auth import api_user, page_user
from .data import database, run_rows, trial_by_id
from .pages import esc, href, page

router = APIRouter()
SCRIPTS = ("vendor/plotly.js", "plots.js", "timeline.js")


def timeline_rows(db: ResultsDB, experiment: str, trial_id: int) -> list[dict]:
    """One entry per run in run order: times, counts, rates of the images seen, tags, merged."""
    tags, merged = db.experiment_run_tags(experiment), db.run_merges(trial_id)
    return [
        {
            "run_id": row["run_id"],
            "run": row["run"],
            "start": row["created"],
            "end": row["concluded"],
            "images": row["images"],
            "hit_rate": row["hits"] / row["images"] if row["images"] else None,
            "indexing_rate": row["indexed"] / row["images"] if row["images"] else None,
            "tags": tags.get(row["run_id"], []),
            "merged": row["run_id"] in merged,
        }
        for row in run_rows(db, experiment, trial_id)
    ]


@router.get("/api/timeline", dependencies=[Depends(api_user)])
def timeline_json(experiment: str, trial_id: int, db: ResultsDB = Depends(database)):
    if experiment not in db.experiments():
        raise HTTPException(404, f"no experiment {experiment!r}")
    return {
        "experiment": experiment,
        "trial_id": trial_id,
        "runs": timeline_rows(db, experiment, trial_id),
    }


@router.get("/timeline", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def timeline_page(experiment: str, trial_id: int, db: ResultsDB = Depends(database)):
    if experiment not in db.experiments():
        raise HTTPException(404, f"no experiment {experiment!r}")
    trial = trial_by_id(db, trial_id)
    source = href("api/timeline", experiment=experiment, trial_id=trial_id)
    back = href("./", experiment=experiment, trial_id=trial_id)
    body = (
        f'<p><a href="{back}">← {esc(experiment)}</a></p>'
        f"<h1>Timeline: {esc(experiment)} — trial {esc(trial['name'])} v{trial['version']}</h1>"
        f'<section id="timeline" data-view="{source}">'
        '<h2>Hit and indexing rate of each run</h2><div class="plotly" id="plot-timeline"></div>'
        '<h2>Runs</h2><table id="timeline-runs"></table></section>'
    )
    return page(f"Timeline {experiment}", body, extra_scripts=SCRIPTS)
