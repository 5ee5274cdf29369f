"""The frame viewer and the virtual powder pattern of a run.

- ``/frames?run_id=&trial_id=[&chunk=&event=]``: the viewer page (a link to any event; without
  one, the run's first hit); ``/frames/data?...``: the event's frame as one gzipped binary
  (:func:`.frames.frame_message`) with spots, predictions and the neighbouring hits
- ``/powder?run_id=&trial_id=``: the virtual powder page; ``/api/powder?...``: its numbers

Frames are read from the run's folder in the active beamtime's experiment folder (the
``sfxflow_beamtime`` Variable's ``exp_dir``), else from the center's copy
(:mod:`.center_frames`); run names are confined by :func:`.frame_source.checked_run_name`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from kernels.resultsdb import ResultsDB

from .auth import api_user, page_user
from .data import database, trial_by_id

router = APIRouter()
ASSETS = Path(__file__).parent
SCRIPTS = {name: (ASSETS / name).read_text() for name in ("frame_viewer.js", "powder.js")}


@dataclass(frozen=True)
class RunContext:
    experiment: str
    run: str
    run_id: int
    trial: dict
    exp_dir: str
    folder: Path
    center: tuple[str, str] | None = None  # (machine, runs folder) when fetched from the center


def experiment_beamtime(experiment: str):
    """The active beamtime, which must be ``experiment``'s (its ``exp_dir``, ``hpc_dir``)."""
    from .frame_source import FrameNotFound
    from .settings_page import active_beamtime  # the Variable: only the api-server reads it

    beamtime, why = active_beamtime()
    if beamtime is None:
        raise FrameNotFound(f"beamtime settings unreadable, so no experiment folder: {why}")
    if beamtime.experiment != experiment:
        raise FrameNotFound(
            f"experiment {experiment!r} is not the active beamtime's ({beamtime.experiment}): "
            "its folder is not known here"
        )
    return beamtime


def run_files(
    request: Request, beamtime, run: str, chunks, events=()
) -> tuple[Path, tuple[str, str] | None]:
    """The run's folder on the beamline side, else its copy fetched from the center (its small
    files, ``chunks`` and the chunks of ``events``, those events alone of a chunk over the
    center's download limit; the calibration snapshot copied from the experiment's calibration
    when that is still the same file), with where it came from."""
    from kernels.process import default_calibration

    from .center_frames import cache_from_environment, center_client
    from .frame_source import checked_run_name, run_folder

    folder = Path(beamtime.exp_dir) / "runs" / checked_run_name(run)
    if folder.is_dir():
        return run_folder(beamtime.exp_dir, run), None
    center = (beamtime.machine, beamtime.hpc_run_dir(run).rsplit("/", 1)[0])
    state = request.app.state
    if not hasattr(state, "center_runs"):
        state.center_runs = cache_from_environment()
    calibration = default_calibration(folder)  # the folder is gone: <exp>/calib/calibration.h5
    cache = state.center_runs
    return cache.folder(center_client(), *center, run, chunks, (calibration,), events), center


def opened(request: Request, ctx: RunContext):
    """The run's frame source and raster layout (opened once, kept in the app's LRU)."""
    from .frame_data import trial_params

    return open_runs(request).get(ctx.folder, trial_params(ctx.trial), ctx.center is not None)


@contextmanager
def frame_errors() -> Iterator[None]:
    """What cannot be shown becomes a 404 (not there) or 422 (unreadable), naming it."""
    from kernels.io.geom import GeometryFileError
    from kernels.io.readers.base import ReaderError
    from kernels.io.runformat import RunFormatError
    from kernels.stages.calibration import CalibrationError

    from .center_frames import CenterUnavailable
    from .frame_source import FrameNotFound

    try:
        yield
    except FrameNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except CenterUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    except (RunFormatError, ReaderError, CalibrationError, GeometryFileError, OSError) as exc:
        raise HTTPException(422, f"frames not readable: {exc}") from None


def run_context(
    request: Request, db: ResultsDB, run_id: int, trial_id: int, chunks=(), events=()
) -> RunContext:
    """The run, its trial and its folder (404 naming what is missing, 503 if only the center
    has it and cannot send it); of a run only the center has, ``chunks`` and ``events`` (the
    viewer's (chunk, event)) are fetched."""
    names = db.run_name(run_id)
    if names is None:
        raise HTTPException(404, f"no run with id {run_id}")
    listed = trial_by_id(db, trial_id)
    trial = db.get_trial(listed["name"], listed["version"])  # with its parameters
    with frame_errors():
        beamtime = experiment_beamtime(names[0])
        folder, center = run_files(request, beamtime, names[1], chunks, events)
    return RunContext(names[0], names[1], run_id, trial, beamtime.exp_dir, folder, center)


def event_of(
    ctx: RunContext, images: list[dict], source, chunk: int | None, event: int | None
) -> tuple[int, int]:
    """The requested event (it must be one of the run's), or the first hit."""
    from .frame_data import first_hit
    from .frame_source import FrameNotFound

    if chunk is None and event is None:
        return first_hit(images, source.events)
    here = (chunk or 0, event or 0)
    if here not in set(source.events):
        raise FrameNotFound(f"run {ctx.run} has no event {here[1]} in chunk {here[0]}")
    return here


@router.get("/frames", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def frames_page(
    request: Request,
    run_id: int,
    trial_id: int,
    chunk: int | None = None,
    event: int | None = None,
    db: ResultsDB = Depends(database),
):
    from . import frames_page as html
    from .frame_data import hit_neighbours, wanted_event

    images = db.images(run_id, trial_id)
    ctx = run_context(request, db, run_id, trial_id, events=[wanted_event(images, chunk, event)])
    with frame_errors():
        source, _ = opened(request, ctx)
        here = event_of(ctx, images, source, chunk, event)
    return html.viewer_page(ctx, here, hit_neighbours(images, *here))


@router.get("/frames/data", dependencies=[Depends(api_user)])
def frame_data(
    request: Request,
    run_id: int,
    trial_id: int,
    chunk: int | None = None,
    event: int | None = None,
    db: ResultsDB = Depends(database),
):
    from .frame_data import hit_neighbours, wanted_event

    started = time.perf_counter()
    images = db.images(run_id, trial_id)  # a center copy: only the chunk of the event comes
    ctx = run_context(request, db, run_id, trial_id, events=[wanted_event(images, chunk, event)])
    with frame_errors():
        source, frame_layout = opened(request, ctx)
        here = event_of(ctx, images, source, chunk, event)
        body = frame_body(ctx, source, frame_layout, here, hit_neighbours(images, *here), started)
    return Response(
        body, media_type="application/octet-stream", headers={"Content-Encoding": "gzip"}
    )


def frame_body(ctx: RunContext, source, frame_layout, here, around: dict, started: float):
    """The event's raster, spots and predictions as :func:`.frames.frame_message`."""
    from .frame_data import results_file, stored_predictions
    from .frames import frame_message, place, raster_points

    blocks = source.blocks(*here)
    spots = source.spots(blocks)
    predicted = stored_predictions(results_file(ctx.exp_dir, ctx.trial["name"], ctx.run), *here)
    row = around["row"] or {}
    header = {
        "chunk": here[0],
        "event": here[1],
        "status": row.get("status", "not processed"),
        "reason": row.get("reason", ""),
        "indexed": bool(row.get("is_indexed", 0)),
        "spots": raster_points(frame_layout, source.detector, spots.block, spots.fs, spots.ss),
        "predictions": []
        if predicted is None
        else raster_points(
            frame_layout,
            source.detector,
            np.zeros(len(predicted)),
            predicted[:, 0] + 0.5,
            predicted[:, 1] + 0.5,
        ),
        "previous_hit": around["previous_hit"],
        "next_hit": around["next_hit"],
        "panels": len(source.detector.panels),
        "pixel_mm": frame_layout.pixel_mm,
        "beam": [float(c[0]) for c in frame_layout.to_raster(np.zeros((1, 3)))],
    }
    raster = place(frame_layout, blocks)
    header["server_ms"] = round(1e3 * (time.perf_counter() - started), 1)
    return frame_message(header, raster)


@router.get("/powder", response_class=HTMLResponse, dependencies=[Depends(page_user)])
def powder_page(request: Request, run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    from . import frames_page as html

    return html.powder_page(run_context(request, db, run_id, trial_id))


@router.get("/api/powder", dependencies=[Depends(api_user)])
def powder_json(request: Request, run_id: int, trial_id: int, db: ResultsDB = Depends(database)):
    from .powder import sampled

    hits = [(r["chunk"], r["event"]) for r in db.images(run_id, trial_id) if r["hit"]]
    chunks = {chunk for chunk, _ in sampled(hits)} or {0}  # a center copy: the hits' chunks
    ctx = run_context(request, db, run_id, trial_id, chunks)
    with frame_errors():
        source, _ = opened(request, ctx)
        return powder_cache(request).get((str(ctx.folder), trial_id, tuple(hits)), source, hits)


@router.get("/frame_viewer.js", dependencies=[Depends(api_user)])
def viewer_script():
    return Response(SCRIPTS["frame_viewer.js"], media_type="text/javascript")


@router.get("/powder.js", dependencies=[Depends(api_user)])
def powder_script():
    return Response(SCRIPTS["powder.js"], media_type="text/javascript")


def open_runs(request: Request):
    """The app's LRU of opened runs (made on first use)."""
    from .frame_data import OpenRuns

    state = request.app.state
    if not hasattr(state, "open_runs"):
        state.open_runs = OpenRuns()
    return state.open_runs


def powder_cache(request: Request):
    from .powder import PowderCache

    state = request.app.state
    if not hasattr(state, "powder_cache"):
        state.powder_cache = PowderCache()
    return state.powder_cache
