"""Detector geometry refinement against a known truth, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.geomrefine.model import group_frames
from kernels.geomrefine.refine import GeometryParams, GeometryRefinementError, refine_geometry
from kernels.geomrefine.spots import IndexedSpots

from .synthetic import (
    PIXEL,
    indexed_stills,
    misoriented,
    modular_detector,
    module_groups,
    with_errors,
)


@pytest.fixture(scope="module")
def truth():
    detector = modular_detector()
    return detector, indexed_stills(detector, 40, seed=1)


def with_outliers(spots: IndexedSpots, fraction: float, seed: int) -> IndexedSpots:
    """Some spots indexed wrongly: moved anywhere up to 20 pixels away."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(spots)) < fraction
    fs = np.where(wrong, spots.fs + rng.uniform(-20, 20, len(spots)), spots.fs)
    ss = np.where(wrong, spots.ss + rng.uniform(-20, 20, len(spots)), spots.ss)
    return IndexedSpots(spots.image, spots.hkl, spots.panel, fs, ss, spots.A, spots.wavelength)


def test_injected_errors_are_recovered_despite_outliers(truth):
    detector, spots = truth
    start = with_errors(detector, seed=2, pixel_mm=PIXEL)
    observed = with_outliers(misoriented(spots, seed=3), 0.03, seed=4)
    result = refine_geometry(start, observed, module_groups(detector))

    groups = module_groups(detector)
    true, found = group_frames(detector, groups), group_frames(result.detector, groups)
    shift = found.centre - true.centre
    turn = np.degrees(np.arctan2(np.cross(true.u, found.u)[:, 2], (true.u * found.u).sum(1)))
    assert np.abs(shift[:, :2]).max() / PIXEL < 0.1  # beam centre and module shifts, pixels
    assert np.abs(shift[:, 2]).max() < 0.03  # distance, mm
    assert np.abs(turn).max() < 0.02  # module rotations, degrees
    assert result.rms_before_px > 1.0 and not result.held_groups
    # the inliers' rms is the noise put in (0.15 px per axis)
    inliers = (observed.fs == spots.fs) & (observed.ss == spots.ss)
    rms_in = np.sqrt(np.mean(np.sum(result.residuals_after[inliers] ** 2, axis=1)))
    assert rms_in == pytest.approx(0.15 * np.sqrt(2), rel=0.15)


def test_a_group_with_too_few_spots_is_held_and_named(truth):
    detector, spots = truth
    sparse = np.flatnonzero(np.isin(spots.panel, [0, 1]))[20:]  # module 0 keeps 20 spots
    keep = np.ones(len(spots), bool)
    keep[sparse] = False
    result = refine_geometry(detector, spots.select(keep), module_groups(detector),
                             GeometryParams(min_spots=30))  # fmt: skip
    assert result.held_groups == [module_groups(detector)[0]]
    assert len(result.refined_groups) == 7


def test_too_few_spots_and_no_convergence_are_refused(truth):
    detector, spots = truth
    with pytest.raises(GeometryRefinementError, match="only 10 indexed spots"):
        refine_geometry(detector, spots.select(np.arange(len(spots)) < 10), module_groups(detector))
    scrambled = with_outliers(spots, 1.0, seed=5)  # every spot wrong: nothing fits
    with pytest.raises(GeometryRefinementError, match="did not converge"):
        refine_geometry(detector, scrambled, module_groups(detector))
