"""A beamtime for the frame viewer tests: an experiment folder with a simulated run processed by
the kernels (results DB rows and the published ``integrated.h5``), the real CSPAD CBFs as a run
of their own (when the shared real data is there), and a run with a hostile name."""

from __future__ import annotations

import json
from pathlib import Path

from facility.beamline.tiled_run import write_tiled_run
from kernels.driver.worker import image_row
from kernels.io.reflections import INTEGRATED_FILE
from kernels.io.runformat import open_run
from kernels.outputs import write_reflections
from kernels.process import default_calibration
from kernels.resultsdb import ResultsDB
from kernels.resultsdb.logger import ImageRow, ImageRowEncoder
from kernels.stages.calibration import load_calibration
from kernels.stages.pipeline import ProcessingParams, Processor

from .conftest import EVIL_RUN

EXPERIMENT = "cxi78513"
TRIAL = "frames-trial"
SIM_EVENTS = 10  # processed events of the simulated run
CSPAD = Path(__file__).resolve().parents[3] / ".." / "shared" / "realdata" / "cspad_thermolysin"
CSPAD_FRAMES = ("idx-20130301060858401.cbf", "idx-20130301060858601.cbf")
JF16M = CSPAD.parent / "geometry_files" / "crystfel_examples" / "jf-swissfel-16M.geom"
# a trial name that is an attack on a page that forgets to escape (and no folder name)
CSPAD_TRIAL = "cspad<img src=x onerror=alert(4)>"
# the CSPAD stills are dark-subtracted ADU (~7.5 ADU per photon): the trial asks for a box sum
# of 200 ADU (~27 photons) to keep the ASICs' noisy pixels out
CSPAD_PARAMS = {"spotfinder": {"min_photons": 200.0}}


def process_events(run_dir: Path, params: ProcessingParams, n: int) -> list:
    """The kernels' chain on the first ``n`` events of a run-format run."""
    with open_run(run_dir) as run:
        calib = load_calibration(default_calibration(run_dir), run.geometry.shape)
        processor = Processor(calib, run.geometry, params)
        return [
            processor.process(run.read_frame(c, e), c, e, wavelength=run.wavelength(c, e))
            for c, e in run.events[:n]
        ]


def log_results(db: ResultsDB, run_id: int, trial_id: int, results: list) -> None:
    encode = ImageRowEncoder(db.dialect, run_id, trial_id)
    db.insert_images(
        [encode(image_row(r, 0, "nid0001", 1000.0 + r.event, r.timings)) for r in results]
    )


def log_hits(db: ResultsDB, run_id: int, trial_id: int, verdicts: tuple) -> None:
    """Rows of events that are all hits, indexed or not (for CSPAD: DIALS's verdict)."""
    encode = ImageRowEncoder(db.dialect, run_id, trial_id)
    rows = [
        encode(
            ImageRow(
                chunk=0,
                event=event,
                hit=True,
                n_spots=500,
                indexed=indexed,
                n_refined=0,
                n_integrated=0,
                status="indexed" if indexed else "hit",
                reason="" if indexed else "not indexed",
                rank=0,
                host="nid0001",
                t_start=2000.0 + event,
                timings={},
            )
        )
        for event, indexed in enumerate(verdicts)
    ]
    db.insert_images(rows)


def make_beamtime(exp: Path, sim_run: Path, db_url: str) -> dict:
    """The experiment folder ``exp`` (runs linked, results written) and its results DB rows."""
    (exp / "runs").mkdir(parents=True)
    (exp / "runs" / "r0001").symlink_to(sim_run, target_is_directory=True)
    params = ProcessingParams()
    results = process_events(sim_run, params, SIM_EVENTS)
    out = exp / "results" / TRIAL / "r0001"
    out.mkdir(parents=True)
    write_reflections(out / INTEGRATED_FILE, results, "r0001", TRIAL, params)
    ids = {"url": db_url, "exp": exp, "results": results}
    with ResultsDB(db_url) as db:
        ids["trial_id"] = db.ensure_trial(TRIAL, params.to_dict())
        ids["sim"] = db.ensure_run(EXPERIMENT, "r0001", concluded=1000.0)
        log_results(db, ids["sim"], ids["trial_id"], results)
        ids["evil"] = db.ensure_run(EXPERIMENT, EVIL_RUN, concluded=1100.0)
        ids["missing"] = db.ensure_run(EXPERIMENT, "r0099", concluded=1200.0)
        if CSPAD.is_dir():
            cspad = exp / "runs" / "r0002"
            cspad.mkdir()
            for name in CSPAD_FRAMES:
                (cspad / name).symlink_to(CSPAD / name)
            ids["cspad_trial_id"] = db.ensure_trial(CSPAD_TRIAL, CSPAD_PARAMS)
            ids["cspad"] = db.ensure_run(EXPERIMENT, "r0002", concluded=2000.0)
            log_hits(db, ids["cspad"], ids["cspad_trial_id"], verdicts=(True, False))
        if JF16M.is_file():  # 4.2 Mpix in 8 real Jungfrau modules: the viewer's speed goal
            write_tiled_run(exp / "runs" / "r0003", JF16M, events=2)
            ids["jungfrau"] = db.ensure_run(EXPERIMENT, "r0003", concluded=3000.0)
            log_hits(db, ids["jungfrau"], ids["trial_id"], verdicts=(False, False))
    return ids


def beamtime_variable(exp: Path) -> str:
    """The ``sfxflow_beamtime`` Variable naming ``exp`` as the experiment folder."""
    return json.dumps({"experiment": EXPERIMENT, "exp_dir": str(exp)})


# Airflow reads a Variable from AIRFLOW_VAR_<NAME> before its metadata DB
VARIABLE_ENV = "AIRFLOW_VAR_SFXFLOW_BEAMTIME"
