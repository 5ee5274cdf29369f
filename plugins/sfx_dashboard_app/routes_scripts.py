"""The scripts of the run view, weather, per-shell, dataset progress and timeline plots, each at
its own path."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from .auth import api_user

VIEW_SCRIPTS = (
    "run_view.js",
    "progress.js",
    "timeline.js",
    "plots.js",
    "splits.js",
    "weather.js",
    "shells.js",
)
router = APIRouter(dependencies=[Depends(api_user)])


def script_route(name: str):
    text = (Path(__file__).parent / name).read_text()

    def script():
        return Response(text, media_type="text/javascript")

    router.add_api_route(f"/{name}", script, methods=["GET"], name=name)


for script_name in VIEW_SCRIPTS:
    script_route(script_name)
