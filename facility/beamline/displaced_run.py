"""A simulated chunk-format run whose detector is not where its files say: the panels of the flat
detector really sit at `true` (moved, turned), the chunks' header states the nominal geometry.

This is the first hour's situation: the DAQ's geometry is off by pixels and millimetres, and
only a refined one (``sfx_setup``'s ``refined.geom``, a trial's ``detector.geom``) puts the
predictions on the spots. Stills are rendered in photons on the true panels
(:class:`~kernels.crystal.panel_image.PanelImage`, the renderer of every simulated run), each
panel's pixels pasted back at its rectangle of the flat frame, and turned into raw ADU with the
flat detector's pedestal and gain. Files as :func:`~facility.beamline.simulate.simulate_experiment`
writes them: ``calib/calibration.h5``, ``truth/truth.mtz``, ``runs/r0001/`` (chunks, the run's
calibration snapshot, ``CONCLUDED.json``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from facility.beamline.crystal_model import make_crystal, write_truth_mtz
from facility.beamline.detector_model import DetectorModel
from facility.beamline.simulate import Renderer, SimulationParams
from kernels.crystal.detector import Detector
from kernels.crystal.geometry import DetectorGeometry
from kernels.io.marker import chunk_name, run_name, write_marker
from kernels.io.runformat import HC_EV_ANGSTROM, write_chunk
from kernels.stages.calibration import save_calibration
from kernels.stages.trial_detector import stacked_image


def paste_panels(stack: np.ndarray, detector: Detector, shape: tuple[int, int]) -> np.ndarray:
    """The flat frame of `shape` holding each panel's pixels of `stack` at its rectangle."""
    flat = np.zeros(shape, dtype=stack.dtype)
    for pixels, p in zip(stack, detector.panels):
        flat[p.ss0 : p.ss1, p.fs0 : p.fs1] = pixels
    return flat


def simulate_displaced_run(
    out,
    nominal: DetectorGeometry,
    true: Detector,
    images: int,
    seed: int = 0,
    params: SimulationParams | None = None,
) -> Path:
    """Write run r0001 of `images` stills rendered on `true` into the experiment `out`, its
    chunks stating `nominal`; returns the run's folder.

    `true` has the flat detector's panels (rectangles of data block 0, e.g.
    ``from_flat(nominal, split_panels=True)`` moved).
    """
    params = params or SimulationParams()
    out = Path(out)
    for sub in ("calib", "runs", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    crystal = make_crystal(params.cell, params.space_group, params.d_min, seed, params.n_atoms)
    write_truth_mtz(out / "truth" / "truth.mtz", crystal)
    layout = stacked_image(true)
    renderer = Renderer(
        crystal, DetectorModel.generate(layout, np.random.default_rng([seed, 1])), params
    )
    electronics = DetectorModel.generate(nominal, np.random.default_rng([seed, 3]))
    save_calibration(out / "calib" / "calibration.h5", electronics.calibration())
    run_dir = out / "runs" / run_name(1)
    run_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng([seed, 2])
    t0 = time.time()
    for chunk, first in enumerate(range(0, images, params.chunk_size)):
        n = min(params.chunk_size, images - first)
        frames = np.empty((n, *nominal.shape), dtype=np.uint16)
        wavelengths = np.empty(n)
        for i in range(n):
            photons, wavelengths[i], _ = renderer.photon_shot(rng)
            flat = paste_panels(layout.frame(photons), true, nominal.shape)
            frames[i] = electronics.to_raw(flat, rng)
        timestamps = t0 + (first + np.arange(n)) / params.rep_rate_hz
        write_chunk(
            run_dir / chunk_name(run_name(1), chunk),
            frames,
            timestamps,
            HC_EV_ANGSTROM / wavelengths,
            nominal,
        )
    shutil.copyfile(out / "calib" / "calibration.h5", run_dir / "calibration.h5")
    write_marker(run_dir, 1)
    return run_dir
