"""The beamtime dashboard: a FastAPI app over the results DB, mounted in Airflow's api-server.

Routes (relative to the mount point, e.g. ``/sfxflow``), one router per page group:

- pages (:mod:`.routes_pages`): ``/`` — runs of one experiment and trial, funnel, live progress,
  merged statistics per dataset; ``/run`` — one run: funnel, images by status, jobs, weather plot
- data (:mod:`.routes_api`): ``/api/runs``, ``/api/runs/{id}/progress``, ``/api/datasets`` — JSON
  polled by the pages for live progress
- plots (:mod:`.routes_plots`): ``/api/runs/{id}/weather`` — the weather binned for Plotly
- actions (:mod:`.routes_actions`, :mod:`.routes_edits`): ``/actions`` — tag and untag runs,
  define and delete datasets, reprocess, make a trial the default (for users Airflow
  authorises), with the audit log
- frames (:mod:`.routes_frames`): ``/frames`` — one event's frame with spots and predictions;
  ``/powder`` — the run's virtual powder pattern
- run view (:mod:`.routes_run_view`): ``/api/runs/{id}/view`` — per-frame series, rates, cells,
  reasons, state and merge of one run, drawn on ``/run`` by ``run_view.js`` (Plotly)
- dataset progress (:mod:`.routes_progress`): ``/progress``, ``/api/datasets/{id}/progress``
- beamtime timeline (:mod:`.routes_timeline`): ``/timeline``, ``/api/timeline``
- setup results (:mod:`.routes_setup`): ``/setup`` — a setup run's cell, histograms, geometry
"""

from __future__ import annotations

import os
import sqlite3

import pymysql
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from kernels.resultsdb import UnknownNameError, parse_db_url

from . import (
    routes_actions,
    routes_api,
    routes_edits,
    routes_frames,
    routes_pages,
    routes_plots,
    routes_progress,
    routes_run_view,
    routes_scripts,
    routes_setup,
    routes_timeline,
)
from .auth import LoginRequired, login_url

RESULTS_DB_ENV = "SFXFLOW_RESULTS_DB"
DEFAULT_RESULTS_DB = "sqlite:///results.db"
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


def create_app(db_url: str | None = None, airflow_url: str | None = None) -> FastAPI:
    """The dashboard app reading the results DB at ``db_url`` (default: :func:`results_db_url`).

    The DB is opened per request (a short read transaction) so the app holds no connection
    between requests. Pages and data only read (read-only sessions, no migrations, no new
    SQLite file); only the actions of :mod:`.routes_actions` write, each in its own session,
    and call Airflow's REST API at ``airflow_url`` (default: the api-server's ``[api] base_url``).
    """
    url = db_url or results_db_url()
    app = FastAPI(
        title="sfxflow beamtime dashboard", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.db_url = url
    app.state.airflow_url = airflow_url
    for module in (routes_pages, routes_api, routes_plots, routes_actions, routes_frames):
        app.include_router(module.router)
    app.include_router(routes_edits.router)  # untag, delete a dataset, default trial
    app.include_router(routes_setup.router)  # a setup run's cell and geometry (issue 15)
    for error, handler in routes_actions.EXCEPTION_HANDLERS.items():
        app.add_exception_handler(error, handler)
    # run view, dataset progress, beamtime timeline (issue 19)
    for module in (routes_run_view, routes_progress, routes_timeline, routes_scripts):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():  # a route may allow caching of its own
            response.headers.setdefault(name, value)
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

    return app
