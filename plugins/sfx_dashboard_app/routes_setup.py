"""A setup run's results (issue 15): ``/setup?experiment=`` lists the trials with results in the
active beamtime's ``<exp_dir>/setup/``; ``/setup?experiment=&trial_id=`` shows one
(:mod:`.setup_page`); ``/setup/file?...&name=`` serves its two PNGs.

The folder is ``<exp_dir>/setup/<trial name>`` (:func:`operators.pipeline.setup.local_setup_dir`,
where ``sfx_setup`` downloads it); the trial name passes the pipeline's ``check_name`` and the
file name is one of the two plots, so no request reaches another path.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from kernels.cell.report import CELL_FILE
from kernels.geomrefine.report import REPORT_FILE
from kernels.resultsdb import ResultsDB
from operators.pipeline.job_script import check_name
from operators.pipeline.setup import ABSENCES_FILES, local_setup_dir

from . import setup_page
from .auth import page_user
from .data import database, trial_by_id

router = APIRouter(dependencies=[Depends(page_user)])


def setup_beamtime(experiment: str):
    """The active beamtime, which must be ``experiment``'s (else 404 saying why)."""
    from .frame_source import FrameNotFound
    from .routes_frames import experiment_beamtime  # the Variable: read in the api-server only

    try:
        return experiment_beamtime(experiment)
    except FrameNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def setup_folder(beamtime, trial_name: str) -> Path | None:
    """Where ``sfx_setup`` puts the trial's results; None for a name no folder can have."""
    try:
        return Path(local_setup_dir(beamtime, check_name("trial", trial_name)))
    except ValueError:
        return None


def trial_setup_folder(experiment: str, trial_name: str) -> Path:
    folder = setup_folder(setup_beamtime(experiment), trial_name)
    if folder is None:
        raise HTTPException(404, f"trial {trial_name!r} has no setup folder (not a pipeline name)")
    return folder


def read_report(folder: Path, name: str) -> dict:
    """One JSON output of the setup, or 404 naming the file missing."""
    path = folder / name
    if not path.is_file():
        raise HTTPException(404, f"no {name} in {folder}: the setup has not finished there")
    return json.loads(path.read_text())


@router.get("/setup", response_class=HTMLResponse)
def setup_view(experiment: str, trial_id: int | None = None, db: ResultsDB = Depends(database)):
    if trial_id is None:
        beamtime = setup_beamtime(experiment)
        folders = [(t, setup_folder(beamtime, t["name"])) for t in db.trials()]
        found = [t for t, folder in folders if folder and (folder / CELL_FILE).is_file()]
        return setup_page.setups_list(experiment, found)
    found_trial = trial_by_id(db, trial_id)
    trial = db.get_trial(found_trial["name"], found_trial["version"])
    folder = trial_setup_folder(experiment, trial["name"])
    report, geometry = read_report(folder, CELL_FILE), read_report(folder, REPORT_FILE)
    has_absences = (folder / ABSENCES_FILES[0]).is_file()  # not in setups made before that step
    absences = read_report(folder, ABSENCES_FILES[0]) if has_absences else None
    return setup_page.setup_page(experiment, trial, report, geometry, absences)


@router.get("/setup/file")
def setup_file(experiment: str, trial_id: int, name: str, db: ResultsDB = Depends(database)):
    if name not in setup_page.SETUP_IMAGES:
        raise HTTPException(
            404, f"no setup plot {name!r}: one of {', '.join(setup_page.SETUP_IMAGES)}"
        )
    path = trial_setup_folder(experiment, trial_by_id(db, trial_id)["name"]) / name
    if not path.is_file():
        raise HTTPException(404, f"no {name} in {path.parent}")
    return FileResponse(path, media_type="image/png")
