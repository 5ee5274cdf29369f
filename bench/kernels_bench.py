"""Images/s per core of the first kernel stages (calibration, spot finding) on 1 Mpix frames.

Prints ours next to a straightforward baseline on the same frames: full-frame median common
mode and scipy.ndimage labelling of thresholded pixels (what a first implementation does).
Goal: calibration + spot finding >= 50 images/s per core.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.calibration import calibrate, load_calibration, plan_calibration
from kernels.spotfinder import find_spots, plan_spotfinding
from kernels.runformat import open_run


def baseline_chain(raw, calib, geometry):
    photons = (raw.astype(np.float32) - calib.pedestal) / np.where(calib.gain > 0, calib.gain, 1)
    for r0, r1, c0, c1 in geometry.panels:
        photons[r0:r1, c0:c1] -= np.median(photons[r0:r1, c0:c1])
    photons *= calib.mask
    labels, n = ndimage.label(photons > 3.0)
    return ndimage.center_of_mass(photons, labels, np.arange(1, n + 1))


def rate(fn, frames):
    started = time.perf_counter()
    for f in frames:
        fn(f)
    return len(frames) / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        params = dataclasses.replace(SimulationParams(), chunk_size=args.images)
        simulate_experiment(tmp, 1, args.images, seed=2, params=params, log=lambda *_: None)
        with open_run(Path(tmp) / "runs" / "r0001") as run:
            frames = [run.read_frame(c, e) for c, e in run.events]
            geometry = run.geometry
        calib = load_calibration(Path(tmp) / "calib" / "calibration.h5")
    cplan = plan_calibration(calib, geometry)
    splan = plan_spotfinding(geometry, calib.mask)
    photons = [calibrate(f, cplan) for f in frames]
    ours_cal = rate(lambda f: calibrate(f, cplan), frames)
    ours_spot = rate(lambda p: find_spots(p, splan), photons)
    ours_both = rate(lambda f: find_spots(calibrate(f, cplan), splan), frames)
    base_both = rate(lambda f: baseline_chain(f, calib, geometry), frames)
    print(f"{len(frames)} frames of {geometry.shape[0]}x{geometry.shape[1]} pixels, one core")
    print(f"{'stage':<28}{'ours img/s':>12}{'baseline img/s':>16}{'ratio':>8}")
    print(f"{'calibration':<28}{ours_cal:>12.1f}{'':>16}{'':>8}")
    print(f"{'spot finding':<28}{ours_spot:>12.1f}{'':>16}{'':>8}")
    print(f"{'calibration + spot finding':<28}{ours_both:>12.1f}{base_both:>16.1f}{ours_both / base_both:>8.1f}")
    print(f"goal >= 50 img/s per core for the two stages: {'met' if ours_both >= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
