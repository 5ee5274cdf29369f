"""The beamtime dashboard: a read-only FastAPI app over the results DB, mounted in Airflow's api-server.

Routes (relative to the mount point, e.g. ``/sfxflow``):

- ``/`` — runs of one experiment and trial, funnel, live progress, merged statistics per dataset
- ``/run`` — one run: funnel, images by status, jobs, computational weather plot
- ``/api/runs`` — the runs table as JSON (polled by the page for live progress)
- ``/plots/weather.png``, ``/plots/shells.png`` — matplotlib PNGs
"""

from __future__ import annotations

import math
import os
import sqlite3
from pathlib import Path

import pymysql
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from kernels.resultsdb import ResultsDB, UnknownNameError, parse_db_url

from . import pages
from .auth import LoginRequired, api_user, login_url, page_user

RESULTS_DB_ENV = "SFXFLOW_RESULTS_DB"
DEFAULT_RESULTS_DB = "sqlite:///results.db"
JS = (Path(__file__).parent / "dashboard.js").read_text()
# The pages run no inline script and load nothing from elsewhere; only Airflow's UI may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def results_db_url() -> str:
    """The results DB URL: ``$SFXFLOW_RESULTS_DB``, else ``sqlite:///results.db`` in the working directory."""
    return os.environ.get(RESULTS_DB_ENV) or DEFAULT_RESULTS_DB


def _finite(value):
    """JSON cannot carry NaN/inf: send null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def plain_title(text: str) -> str:
    """A name as literal matplotlib text ('$' would start math mode)."""
    return text.replace("$", r"\$")


def create_app(db_url: str | None = None) -> FastAPI:
    """The dashboard app reading the results DB at ``db_url`` (default: :func:`results_db_url`).

    The DB is opened per request (a short read transaction) so the app holds no connection
    between requests and never writes (read-only sessions, no migrations, no new SQLite file).
    """
    url = db_url or results_db_url()
    app = FastAPI(
        title="sfxflow beamtime dashboard", docs_url=None, redoc_url=None, openapi_url=None
    )

    def database():
        with ResultsDB(url, retry_for=5.0, read_only=True) as db:
            yield db

    def trial_by_id(db: ResultsDB, trial_id: int) -> dict:
        for trial in db.trials():
            if trial["id"] == trial_id:
                return trial
        raise HTTPException(404, f"no trial with id {trial_id}")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired):
        return RedirectResponse(login_url(request), status_code=303)

    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(pymysql.MySQLError)
    async def db_unreadable(request: Request, exc: Exception):
        # e.g. no results DB yet at that URL, or the server is down: say which DB, never its password
        detail = (
            f"results DB {parse_db_url(url).redacted()} not readable: {type(exc).__name__}: {exc}"
        )
        return JSONResponse({"detail": detail}, status_code=503)

    @app.exception_handler(UnknownNameError)
    async def unknown_name(request: Request, exc: UnknownNameError):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(page_user)])
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
        rows = db.run_table(experiment, trial["id"])
        sections = [
            pages.dataset_section(d, trial["id"], db.merge_stats(trial["id"], dataset_id=d["id"]))
            for d in db.datasets(experiment)
        ]
        return pages.dashboard(
            picker, experiment, trial, rows, sections, db.merges_updated(trial["id"])
        )

    @app.get("/run", response_class=HTMLResponse, dependencies=[Depends(page_user)])
    def run(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
        names = db.run_name(run_id)
        if names is None:
            raise HTTPException(404, f"no run with id {run_id}")
        trial = trial_by_id(db, trial_id)
        return pages.run_page(
            names[0],
            names[1],
            run_id,
            trial,
            db.image_counts(run_id, trial_id),
            db.jobs(run_id, trial_id),
            db.run_summary(run_id, trial_id),
        )

    @app.get("/api/runs", dependencies=[Depends(api_user)])
    def runs_json(experiment: str, trial_id: int, db: ResultsDB = Depends(database)):
        return {
            "experiment": experiment,
            "trial_id": trial_id,
            "runs": db.run_table(experiment, trial_id),
            "merged_at": db.merges_updated(trial_id),
        }

    @app.get("/api/runs/{run_id}/progress", dependencies=[Depends(api_user)])
    def progress_json(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
        return db.image_counts(run_id, trial_id)

    @app.get("/api/datasets", dependencies=[Depends(api_user)])
    def datasets_json(experiment: str, trial_id: int, db: ResultsDB = Depends(database)):
        return {
            "datasets": [
                {**d, "stats": _finite(db.merge_stats(trial_id, dataset_id=d["id"]))}
                for d in db.datasets(experiment)
            ]
        }

    @app.get("/plots/weather.png", dependencies=[Depends(api_user)])
    def weather_plot(run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
        names = db.run_name(run_id)
        segments = db.weather(run_id, trial_id)
        if names is None or not segments:
            raise HTTPException(
                404, f"no processed images for run id {run_id}, trial id {trial_id}"
            )
        title = plain_title(f"{names[0]} {names[1]}: computational weather")
        from . import plots  # matplotlib only once a plot is asked for

        return Response(plots.weather_png(segments, title), media_type="image/png")

    @app.get("/plots/shells.png", dependencies=[Depends(api_user)])
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

    @app.get("/dashboard.js", dependencies=[Depends(api_user)])
    def script():
        return Response(JS, media_type="text/javascript")

    return app
