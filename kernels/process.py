"""``python -m kernels process`` in one process: the per-image chain over a whole run."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kernels.io.runformat import Run, open_run
from kernels.outputs import write_run_outputs
from kernels.stages.calibration import load_calibration
from kernels.stages.pipeline import ImageResult, ParamsError, ProcessingParams, Processor
from kernels.stages.trial_detector import (
    cut_calibration,
    fitted_panels,
    stacked_image,
    trial_detector,
)


def default_calibration(run_dir: Path) -> Path:
    """The run's own calibration snapshot if it has one, else ``<exp>/calib/calibration.h5``."""
    own = Path(run_dir) / "calibration.h5"
    return (
        own if own.exists() else Path(run_dir).resolve().parent.parent / "calib" / "calibration.h5"
    )


def load_params(path) -> ProcessingParams:
    """Trial parameters from a JSON file (absent -> defaults).

    Raises
    ------
    ParamsError
        Naming the file: unreadable, not JSON, or parameters that are unknown or out of range.
    """
    if path is None:
        return ProcessingParams()
    try:
        return ProcessingParams.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        raise ParamsError(f"{path}: invalid parameters: {exc}") from None


def run_processor(run: Run, calib_path, params: ProcessingParams) -> Processor:
    """The chain for a run's frames: on the run's own flat geometry, or, when the trial has a
    geometry (``detector.geom``), on its panels cut from each frame.

    Raises
    ------
    TrialGeometryError
        The trial's geometry does not fit the run's frames (naming the run and the panel).
    """
    calib = load_calibration(calib_path or default_calibration(run.dir), run.geometry.shape)
    if not params.detector.geom:
        return Processor(calib, run.geometry, params)
    panels = fitted_panels(trial_detector(params.detector.geom), run.geometry.shape, run.name)
    image = stacked_image(panels)
    return Processor(cut_calibration(calib, panels, image), image, params, frame_panels=panels)


def process_events(run, processor: Processor) -> list[ImageResult]:
    """Every event of ``run`` (the chunk format's :class:`Run`, or a facility run's
    ``ForeignRun``) through ``processor``, in (chunk, event) order."""
    return [
        processor.process(run.read_frame(c, e), c, e, run.timestamp(c, e), run.wavelength(c, e))
        for c, e in run.events
    ]


def process_run(
    run_dir,
    out_dir,
    calib_path=None,
    params: ProcessingParams = ProcessingParams(),
    trial: str = "default",
) -> dict:
    """Process every event of a run in this process; write images.csv and summary.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open_run(run_dir) as run:
        results = process_events(run, run_processor(run, calib_path, params))
        name, tags, files = run.name, run.event_tags(), run.chunk_files()
    wall = time.perf_counter() - started
    return write_run_outputs(out, results, wall, name, trial, params, tags, files)
