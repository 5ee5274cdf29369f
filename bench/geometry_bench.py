"""Detector geometry refinement (``kernels.geomrefine``): errors recovered and time, ours beside
the reference geometry's own residuals.

1. Simulated 16-panel detector (8 modules), the issue's injected errors (beam centre 2 px,
   distance 0.5 mm, each module 1 px and 0.1 degrees), N indexed stills: recovered error and time.
2. 150 real CSPAD stills (LD91, DIALS's refined metrology): the metrology perturbed the same way
   per 2-ASIC sensor, refined back; rms beside DIALS's own (spots within 4 px).
3. The first hour end to end: a simulated 16-panel run whose panels sit off its stated geometry
   by the same errors, set up as sfx_setup does (cell-index -> cell -> refine-geometry --cell),
   processed with the setup's trial (the cell found, the refined geometry) beside the true cell
   and geometry and beside the run's own geometry: indexing rate and CC to truth.

    python bench/geometry_bench.py [--images 100 300] [--runs 40 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"

from kernels.geomrefine.model import group_frames  # noqa: E402
from kernels.geomrefine.refine import refine_geometry  # noqa: E402
from tests.kernels.geomrefine.ld91 import cspad_ld91, pixel_mm  # noqa: E402
from tests.kernels.geomrefine.synthetic import (  # noqa: E402
    PIXEL,
    indexed_stills,
    misoriented,
    modular_detector,
    module_groups,
    with_errors,
)
from tests.kernels.stages.test_trial_geometry import displaced_setup, processed  # noqa: E402


def errors(truth, refined, groups, px):
    t, f = group_frames(truth, groups), group_frames(refined, groups)
    shift = np.abs(f.centre - t.centre)
    turn = np.degrees(np.arctan2(np.cross(t.u, f.u)[:, 2], (t.u * f.u).sum(1)))
    return shift[:, :2].max() / px, shift[:, 2].max(), np.abs(turn).max()


def simulated(n_images: int) -> None:
    truth = modular_detector()
    spots = misoriented(indexed_stills(truth, n_images, seed=1), seed=3)
    start = with_errors(truth, seed=2, pixel_mm=PIXEL)
    began = time.perf_counter()
    result = refine_geometry(start, spots, module_groups(truth))
    seconds = time.perf_counter() - began
    px, mm, deg = errors(truth, result.detector, module_groups(truth), PIXEL)
    print(
        f"simulated, {n_images:4d} images, {len(spots):6d} spots: rms {result.rms_before_px:.2f} -> "
        f"{result.rms_after_px:.3f} px; max error {px:.3f} px, {mm:.4f} mm, {deg:.4f} deg "
        f"(goal < 0.1 px, < 0.03 mm, < 0.02 deg); {seconds:.1f} s"
    )


def real() -> None:
    path = REALDATA / "cspad_lysozyme_spots" / "lysozyme_LD91_0-149.h5"
    if not path.exists():
        print(f"real CSPAD: {path} is absent, skipped")
        return
    detector, spots, dials_rms = cspad_ld91(path)
    px = pixel_mm(detector)
    sensors = module_groups(detector)
    began = time.perf_counter()
    result = refine_geometry(with_errors(detector, seed=3, pixel_mm=px), spots, sensors)
    seconds = time.perf_counter() - began
    moved = [g for g in sensors if g in result.refined_groups]
    shift_px, dz, deg = errors(detector, result.detector, moved, px)
    print(
        f"real CSPAD LD91, 150 stills, {len(spots)} spots: rms {result.rms_before_px:.3f} -> "
        f"{result.rms_after_px:.3f} px, DIALS's metrology {dials_rms:.3f} px (spots within 4 px); "
        f"{len(moved)} sensors refined back to DIALS's within {shift_px:.2f} px, {dz:.3f} mm, "
        f"{deg:.3f} deg, {len(result.held_groups)} held (< 20 spots); {seconds:.1f} s"
    )


def first_hour(n_images: int) -> None:
    """Row 3: the setup's trial beside the true geometry and the run's own, one run."""
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        run_dir, true_trial, setup_trial = displaced_setup(Path(tmp), n_images)
        setup_seconds = time.perf_counter() - began
        truth = run_dir.parents[1] / "truth" / "truth.mtz"
        rows = {
            "setup trial (refined)": processed(run_dir, Path(tmp) / "setup", setup_trial, truth),
            "true cell and geometry": processed(run_dir, Path(tmp) / "true", true_trial, truth),
            "run's own geometry": processed(
                run_dir, Path(tmp) / "own", {"crystal": setup_trial["crystal"]}, truth
            ),
        }
    print(f"first hour, {n_images} images (setup chain {setup_seconds:.0f} s):")
    for name, r in rows.items():
        print(
            f"  {name:24s} indexed {r['indexed']:.3f} of the hits, {r['integrated']} integrated, "
            f"CC to truth {r['cc']:.4f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--runs", type=int, nargs="*", default=[40, 200])
    args = parser.parse_args()
    for n in args.images:
        simulated(n)
    real()
    for n in args.runs:
        first_hour(n)
    print(f"load average {os.getloadavg()}")
