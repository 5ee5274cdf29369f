"""150 real CSPAD stills (LCLS LD91 lysozyme) as indexed spots on DIALS's refined metrology."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from kernels.crystal.detector import Detector
from kernels.crystal.dials_frame import detector_from_dials
from kernels.geomrefine.refine import GeometryParams, rms
from kernels.geomrefine.spots import IndexedSpots


def cspad_ld91(path: Path) -> tuple[Detector, IndexedSpots, float]:
    """The detector (its 32 two-ASIC sensors as the collection ``modules``), the spots, and the
    rms of DIALS's own predictions over the spots within the outlier distance."""
    with h5py.File(path) as f:
        p = f["detector_panels"]
        detector = detector_from_dials(
            p["origin_mm"][()], p["fast_axis"][()], p["slow_axis"][()],
            float(p.attrs["pixel_size_mm"]), p.attrs["image_size_fs_ss"],
        )  # fmt: skip
        r = {k: f["reflections"][k][()] for k in f["reflections"]}
        spots = IndexedSpots(
            r["expt_id"].astype(int), r["miller_index"].astype(int), r["panel"].astype(int),
            r["fs_ss_obs_px"][:, 0], r["fs_ss_obs_px"][:, 1], f["A_sfxflow"][()],
            f["wavelength_A"][()],
        )  # fmt: skip
    names = [p.name for p in detector.panels]
    sensors = {f"rigid_group_s{k}": (names[2 * k], names[2 * k + 1]) for k in range(32)}
    groups = {**sensors, "rigid_group_collection_modules": tuple(sensors)}
    dials_rms, _ = rms(r["fs_ss_cal_px"] - r["fs_ss_obs_px"], GeometryParams.outlier_px)
    return Detector(detector.panels, groups), spots, dials_rms


def pixel_mm(detector: Detector) -> float:
    return float(np.linalg.norm(detector.panels[0].fast))
