"""Calibration + spot finding + hit classification against the simulator's ground truth."""

import h5py
import numpy as np
from scipy.spatial import cKDTree

from kernels.crystal.geometry import DetectorGeometry, tiled_panels
from kernels.io.runformat import open_run
from kernels.stages.calibration import Calibration, calibrate, load_calibration, plan_calibration
from kernels.stages.pipeline import Processor
from kernels.stages.spotfinder import candidates, find_spots, plan_spotfinding, ring_thresholds


def test_calibration_removes_pedestal_gain_and_common_mode():
    geometry = DetectorGeometry(shape=(64, 64), panels=tiled_panels((64, 64), (2, 2), 2))
    rng = np.random.default_rng(0)
    pedestal = rng.normal(1000, 30, (64, 64)).astype(np.float32)
    gain = rng.normal(20, 1, (64, 64)).astype(np.float32)
    mask = np.ones((64, 64), bool)
    mask[5, 7] = False
    photons = (rng.random((64, 64)) < 0.05).astype(np.float32) * 3
    raw = pedestal + gain * photons
    for i, (r0, r1, c0, c1) in enumerate(geometry.panels):
        raw[r0:r1, c0:c1] += 10.0 * (i - 1.5)  # per-panel common mode
    out = calibrate(
        raw.astype(np.uint16),
        plan_calibration(Calibration(pedestal, gain, mask), geometry, stride=1),
    )
    good = mask & (
        np.add.reduce(
            [
                np.pad(np.ones((r1 - r0, c1 - c0)), ((r0, 64 - r1), (c0, 64 - c1)))
                for r0, r1, c0, c1 in geometry.panels
            ]
        )
        > 0
    )
    assert out[5, 7] == 0.0
    assert np.array_equal(np.rint(out[good]), photons[good])  # every photon count recovered


def _process_run(exp):
    with open_run(exp / "runs" / "r0001") as run:
        calib = load_calibration(exp / "calib" / "calibration.h5", run.geometry.shape)
        processor = Processor(calib, run.geometry)
        return [processor.process(run.read_frame(c, e), c, e) for c, e in run.events]


def test_hit_classification_precision_and_recall(sim_experiment):
    results = _process_run(sim_experiment)
    with h5py.File(sim_experiment / "truth" / "r0001.h5") as t:
        truth = t["hit"][()]
    found = np.array([r.hit for r in results])
    tp = (found & truth).sum()
    precision = tp / found.sum()
    recall = tp / truth.sum()
    assert precision >= 0.98 and recall >= 0.98, (precision, recall)
    misses = [r for r in results if not r.hit]
    assert all(r.status == "miss" and "spots" in r.reason for r in misses)


def test_spots_sit_on_true_reflections(sim_experiment):
    results = _process_run(sim_experiment)
    with h5py.File(sim_experiment / "truth" / "r0001.h5") as t:
        event, col, row, photons = (t[f"spots/{k}"][()] for k in ("event", "col", "row", "photons"))
    offsets, found_strong = [], []
    for i, r in enumerate(results):
        if not r.hit:
            continue
        sel = event == i
        tree = cKDTree(np.c_[col[sel], row[sel]])
        d, _ = tree.query(np.c_[r.spots.col, r.spots.row])
        offsets.append(d)
        strong = sel & (photons > 50)
        d_strong, _ = cKDTree(np.c_[r.spots.col, r.spots.row]).query(
            np.c_[col[strong], row[strong]]
        )
        found_strong.append(d_strong < 2)
    offsets = np.concatenate(offsets)
    assert (offsets < 2).mean() > 0.95  # nearly every spot is a true reflection
    assert np.median(offsets) < 1.0
    assert np.concatenate(found_strong).mean() > 0.9  # and strong reflections are found


def test_photon_counting_frame_single_photons_are_not_candidates_and_spots_are_found():
    # a noise-free photon frame: Poisson background of 0.05 photon/pixel, 12 Gaussian spots
    geometry = DetectorGeometry(shape=(400, 400), beam_x=200.3, beam_y=199.6)
    rng = np.random.default_rng(3)
    rows, cols = np.indices(geometry.shape)
    centres = np.c_[rng.uniform(40, 360, 12), rng.uniform(40, 360, 12)]  # (col, row)
    expected = np.full(geometry.shape, 0.05)
    for c, r in centres:
        expected += 150 / (2 * np.pi) * np.exp(-((cols - c) ** 2 + (rows - r) ** 2) / 2)
    photons = rng.poisson(expected).astype(np.float32)
    plan = plan_spotfinding(geometry, np.ones(geometry.shape, bool))
    _, threshold = ring_thresholds(photons.reshape(-1), plan)
    single = photons.reshape(-1) == 1
    above = single & (photons.reshape(-1) > threshold[plan.ring])
    assert above.sum() < 0.01 * single.sum()  # a lone photon is background, not a candidate
    spots = find_spots(photons, plan)
    distance, _ = cKDTree(np.c_[spots.col, spots.row]).query(centres)
    assert len(spots) == len(centres) and distance.max() < 0.5


def test_candidates_are_exactly_the_valid_pixels_above_their_ring_threshold():
    # photons with a little read noise; the sampled pixels of the innermost ring are 0, so its
    # threshold is far below every other ring's, and its other pixels hold 0.7 photon
    geometry = DetectorGeometry(shape=(300, 300), beam_x=150.3, beam_y=140.6)
    rng = np.random.default_rng(4)
    photons = rng.poisson(0.05, geometry.shape) + rng.normal(0, 0.05, geometry.shape)
    mask = rng.random(geometry.shape) > 0.01
    plan = plan_spotfinding(geometry, mask)
    inner = plan.ring.reshape(geometry.shape) == 0
    sampled = (np.indices(geometry.shape) % 2 == 0).all(axis=0)
    photons[inner] = np.where(sampled[inner], 0.0, 0.7)
    flat = photons.astype(np.float32).reshape(-1)
    _, threshold = ring_thresholds(flat, plan)
    brute = np.flatnonzero(plan.valid & (flat > threshold[plan.ring]))
    typical = np.median(threshold[plan.sampled])
    assert (flat[brute] < 0.8 * typical).any()  # candidates far below the scanning level
    np.testing.assert_array_equal(candidates(flat, threshold, plan), brute)
