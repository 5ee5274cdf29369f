"""Section 5 of bench/kernels_bench.py: a 4 Mpix multi-panel detector beside the flat one, and
our spot finder beside OM's peakfinder8 on the same frames.

The multi-panel detector is SwissFEL's Jungfrau 4M (8 modules of 514 x 1030 pixels, the geometry
embedded in the photolyase stream in shared/realdata), each module tilted 3 mrad and shifted
0.2 mm, at 100 mm; its stills are calibrated photons (CXI + .geom), read through the foreign
run's reader. The flat one is the simulator's 1 Mpix detector (raw ADU). Both are the same
crystal, every shot a hit. Times are whole-chain (calibration to integration) in one process,
detectors alternated, best of the repeats; per pixel of the detector's own pixels.

peakfinder8 is OM's compiled extension (PyPI ``ondamonitor``, ``om.algorithms._crystallography``),
called as OM's ``Peakfinder8PeakDetection.find_peaks`` calls it, on the calibrated photons our
spot finder gets (the modules stacked as OM's slab, the same bad pixels and beam radius), with
our thresholds: snr 6, 2-30 pixels (OM's defaults too), local background radius 4 (OM's LCLS
monitor.yaml), ADC threshold 0. Matches are spots on the same module within 0.5 px, counted
both ways for the spots with at least 0, 10, 20 and 50 photons (each finder's own sum).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from facility.beamline.panel_run import simulate_panel_run, tilted
from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.crystal.panel_image import PanelImage, beam_radius_px
from kernels.foreign import open_foreign_run
from kernels.io.geom import read_geom
from kernels.io.geom_detector import to_detector
from kernels.io.readers.base import stacked
from kernels.io.runformat import open_run
from kernels.stages.calibration import calibrate, load_calibration
from kernels.stages.pipeline import ProcessingParams, Processor
from kernels.stages.spotfinder import find_spots
from tests.kernels.realdata import JUNGFRAU_4M_STREAM, REALDATA, stream_geometry

MATCH_PX = 0.5
OM_LOCAL_BG_RADIUS = 4
OM_MAX_PEAKS = 2048
PHOTON_FLOORS = (0, 10, 20, 50)  # spots with at least this many photons (10: our min_photons)
WHO = ("ours", "peakfinder8")


def flat_run(root: Path, images: int, seed: int):
    """(processor, [(raw, wavelength)], sensor pixels) of a flat run of all hits."""
    params = SimulationParams(hit_rate=1.0)
    (run_dir,) = simulate_experiment(
        root / "flat", 1, images, seed=seed, params=params, workers=1, log=lambda *_: None
    )
    with open_run(run_dir) as run:
        calib = load_calibration(root / "flat" / "calib" / "calibration.h5", run.geometry.shape)
        frames = [(run.read_frame(c, e), run.wavelength(c, e)) for c, e in run.events]
        processor = Processor(calib, run.geometry)
    return processor, frames, frames[0][0].size


def jungfrau_run(root: Path, images: int, seed: int):
    """(processor, [(stacked photons, wavelength)], sensor pixels) of the tilted Jungfrau 4M."""
    geom = stream_geometry(REALDATA.joinpath(*JUNGFRAU_4M_STREAM), root)
    detector = tilted(stacked(to_detector(read_geom(geom)), str(geom)), distance_mm=100.0)
    folder = root / "jungfrau4m"
    params = SimulationParams(hit_rate=1.0)
    data = simulate_panel_run(folder, detector, images, seed=seed, params=params)
    run = open_foreign_run([data], str(folder / "detector.geom"))
    frames = [(run.read_frame(c, e), run.wavelength(c, e)) for c, e in run.events]
    processor = run.processor(ProcessingParams())
    run.close()
    return processor, frames, frames[0][0].size


def chain_seconds(processor: Processor, frames) -> float:
    """Seconds for the whole chain over `frames` (one warm-up image first)."""
    processor.process(frames[0][0], wavelength=frames[0][1])
    started = time.perf_counter()
    for raw, wavelength in frames:
        processor.process(raw, wavelength=wavelength)
    return time.perf_counter() - started


def om_peaks(photons: np.ndarray, mask: np.ndarray, radius: np.ndarray, snr: float, pix):
    """peakfinder8 on a stacked (modules, rows, cols) frame: module, fs, ss (pixel corners at
    integers, as our panel coordinates) and intensity of its peaks."""
    from om.algorithms._crystallography import peakfinder_8

    n, rows, cols = photons.shape
    fs, ss, intensity, *_ = peakfinder_8(
        OM_MAX_PEAKS,
        photons.reshape(n * rows, cols).astype(np.float32),
        mask.reshape(n * rows, cols).astype(np.int8),
        radius.reshape(n * rows, cols).astype(np.float32),
        0,
        None,
        None,
        0,
        cols,
        rows,
        1,
        n,
        0.0,
        snr,
        pix[0],
        pix[1],
        OM_LOCAL_BG_RADIUS,
    )
    ss = np.asarray(ss, float)
    module = np.floor(ss / rows).astype(int)
    return module, np.asarray(fs, float) + 0.5, ss - module * rows + 0.5, np.asarray(intensity)


def matched(a, b) -> np.ndarray:
    """True for each spot of `a` (module, fs, ss) with a spot of `b` on its module within
    MATCH_PX."""
    found = np.zeros(len(a[0]), dtype=bool)
    for module in np.unique(a[0]):
        mine, theirs = a[0] == module, b[0] == module
        if theirs.any():
            d, _ = cKDTree(np.c_[b[1][theirs], b[2][theirs]]).query(np.c_[a[1][mine], a[2][mine]])
            found[mine] = d <= MATCH_PX
    return found


def spots_beside_peakfinder8(processor: Processor, frames) -> dict:
    """Both spot finders on the same calibrated frames: per photon floor (PHOTON_FLOORS) and
    finder, [spots, spots matched by the other finder]; seconds per frame."""
    image = processor.geometry
    assert isinstance(image, PanelImage)
    plan = processor.calibration_plan
    mask, radius = image.frame(plan.mask), image.frame(beam_radius_px(image))
    p = processor.spot_plan.params
    ours_t = theirs_t = 0.0
    counts = {(floor, who): np.zeros(2, int) for floor in PHOTON_FLOORS for who in WHO}
    for raw, _ in frames:
        photons = calibrate(image.image(raw), plan)
        t0 = time.perf_counter()
        spots = find_spots(photons, processor.spot_plan)
        t1 = time.perf_counter()
        stack = image.frame(photons)
        t2 = time.perf_counter()
        theirs = om_peaks(stack, mask, radius, p.snr, (p.min_pix, p.max_pix))
        t3 = time.perf_counter()
        ours_t, theirs_t = ours_t + t1 - t0, theirs_t + t3 - t2
        ours = image.locate(spots.col, spots.row)
        hits = {"ours": matched(ours, theirs[:3]), "peakfinder8": matched(theirs[:3], ours)}
        photon_sums = {"ours": spots.intensity, "peakfinder8": theirs[3]}
        for (floor, who), count in counts.items():
            strong = photon_sums[who] >= floor
            count += strong.sum(), hits[who][strong].sum()
    n = len(frames)
    return {"counts": counts, "ours_s": ours_t / n, "theirs_s": theirs_t / n}


def multipanel_section(root: Path, images: int, repeats: int, seed: int = 8) -> None:
    """Print section 5: whole-chain speed per pixel, Jungfrau 4M vs flat; spot finding beside
    peakfinder8."""
    import os

    flat = flat_run(root, images, seed)
    jf = jungfrau_run(root, images, seed)
    best = {"flat": np.inf, "jf": np.inf}
    for _ in range(repeats):
        for name, (processor, frames, _) in (("flat", flat), ("jf", jf)):
            best[name] = min(best[name], chain_seconds(processor, frames))
    per_pixel = {
        name: best[name] / images / run[2] * 1e6 for name, run in (("flat", flat), ("jf", jf))
    }
    print(
        f"\n5. multi-panel detector, {images} hits each, best of {repeats}, load "
        f"{os.getloadavg()[0]:.1f}:"
    )
    for name, label, run in (("flat", "flat 1 Mpix", flat), ("jf", "Jungfrau 4M tilted", jf)):
        print(
            f"  {label:22s} {run[2] / 1e6:.2f} Mpix  {images / best[name]:6.2f} images/s per core  "
            f"{per_pixel[name]:.4f} us/pixel"
        )
    print(
        f"  per-pixel speed, Jungfrau 4M / flat: {per_pixel['flat'] / per_pixel['jf']:.2f} "
        "(goal >= 0.9)"
    )
    s = spots_beside_peakfinder8(jf[0], jf[1])
    print(f"  spots on the Jungfrau 4M frames with one of the other finder within {MATCH_PX} px:")
    for floor in PHOTON_FLOORS:
        row = "  ".join(
            f"{who} {s['counts'][floor, who][1] / max(s['counts'][floor, who][0], 1):.3f} of "
            f"{s['counts'][floor, who][0]}"
            for who in WHO
        )
        print(f"    >= {floor:2d} photons: {row}")
    print(
        f"  spot finding time per 4 Mpix frame: ours {1e3 * s['ours_s']:.1f} ms, peakfinder8 "
        f"{1e3 * s['theirs_s']:.1f} ms (ours / theirs speed {s['theirs_s'] / s['ours_s']:.2f}, goal >= 1)"
    )
