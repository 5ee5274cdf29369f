"""Geometry refinement on 150 real CSPAD stills (LCLS LD91 lysozyme, DIALS's refined metrology)."""

from __future__ import annotations

import numpy as np

from kernels.geomrefine.model import group_frames
from kernels.geomrefine.refine import GeometryParams, refine_geometry
from tests.kernels.realdata import realdata

from .ld91 import cspad_ld91, pixel_mm
from .synthetic import module_groups, with_errors


def test_perturbed_metrology_returns_to_dials_refined_one():
    detector, spots, dials_rms = cspad_ld91(
        realdata("cspad_lysozyme_spots", "lysozyme_LD91_0-149.h5")
    )
    px = pixel_mm(detector)
    sensors = module_groups(detector)
    result = refine_geometry(with_errors(detector, seed=3, pixel_mm=px), spots, sensors)
    print(
        f"CSPAD LD91: rms {result.rms_before_px:.3f} -> {result.rms_after_px:.3f} px "
        f"(DIALS's own {dials_rms:.3f}, spots within {GeometryParams.outlier_px} px); "
        f"{len(result.held_groups)} of 32 sensors held"
    )
    # back to the residual of DIALS's metrology, and to its sensors' places within the noise
    assert result.rms_after_px < 1.05 * dials_rms and result.rms_before_px > 1.5 * dials_rms
    moved = [g for g in sensors if g in result.refined_groups]
    true, found = group_frames(detector, moved), group_frames(result.detector, moved)
    shift = np.abs(found.centre - true.centre)
    assert np.median(shift[:, :2]) / px < 0.25 and shift[:, 2].max() < 0.15
    assert len(moved) >= 20
