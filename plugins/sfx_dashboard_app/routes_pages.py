"""The dashboard's HTML pages (and the script they load): overview and one run."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse, Response

from kernels.resultsdb import ResultsDB
from operators.pipeline.state import state_words

from . import pages, run_view_page
from .auth import api_user, page_user
from .data import database, pipelines, run_rows, trial_by_id

JS = (Path(__file__).parent / "dashboard.js").read_text()

router = APIRouter()


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def overview(
    experiment: str | None = None,
    trial_id: int | None = None,
    db: ResultsDB = Depends(database),
):
    experiments, trials = db.experiments(), db.trials()
    experiment = experiment if experiment is not None else next(iter(experiments), None)
    if experiment is not None and experiment not in experiments:
        raise HTTPException(404, f"no experiment {experiment!r}")
    trial = trial_by_id(db, trial_id) if trial_id is not None else next(iter(trials), None)
    picker = pages.picker(experiments, trials, experiment, trial and trial["id"])
    if experiment is None or trial is None:
        return pages.dashboard(picker, None, None, [], [], 0.0)
    sections = [
        pages.dataset_section(
            {**d, "experiment": experiment},
            trial["id"],
            db.merge_stats(trial["id"], dataset_id=d["id"]),
        )
        for d in db.datasets(experiment)
    ]
    rows = run_rows(db, experiment, trial["id"])
    view = pipelines(db, trial["id"], rows)
    return pages.dashboard(
        picker,
        experiment,
        trial,
        [{**row, **view[row["run_id"]]} for row in rows],
        sections,
        db.merges_updated(trial["id"]),
    )


@router.get("/run", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def run(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    names = db.run_name(run_id)
    if names is None:
        raise HTTPException(404, f"no run with id {run_id}")
    counts = db.image_counts(run_id, trial_id)
    record = db.pipeline_states(trial_id).get(run_id)
    return pages.run_page(
        names[0],
        names[1],
        run_id,
        trial_by_id(db, trial_id),
        counts,
        db.jobs(run_id, trial_id),
        db.run_summary(run_id, trial_id),
        state_words(record, counts["images"]),
        (record or {}).get("log_url") or "",
        run_view_page.run_view_section(run_id, trial_id),
        run_view_page.SCRIPTS,
    )


@router.get("/settings", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def settings(db: ResultsDB = Depends(database)):
    # the kernels' parameter definitions (numpy, h5py) load only when this page is asked for:
    # every Airflow process loads the plugin
    from . import settings_page

    trials = [db.get_trial(t["name"], t["version"]) for t in db.trials()]
    return settings_page.settings_page(*settings_page.active_beamtime(), trials)


@router.get("/dashboard.js", dependencies=[Depends(api_user)])
def script():
    return Response(JS, media_type="text/javascript")


# Plotly.js (MIT, cartesian bundle: scatter, bar, histogram, heatmap), vendored from npm
# plotly.js-cartesian-dist-min 4.1.1 so the pages load nothing from elsewhere.
PLOTLY = Path(__file__).parent / "vendor" / "plotly-cartesian-4.1.1.min.js"


@router.get("/vendor/plotly.js", dependencies=[Depends(api_user)])
def plotly_script():
    # versioned file: the browser may keep it for a day instead of fetching 1.5 MB per page
    return Response(
        PLOTLY.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "private, max-age=86400"},
    )
