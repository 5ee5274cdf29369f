"""Detectors stated in the DIALS/dxtbx lab frame, turned into the sfxflow frame.

DIALS puts the beam along -z; sfxflow along +z. The rotation diag(-1, 1, -1) (a half turn about
y, so handedness is kept) takes one to the other: lab positions, panel axes and A matrices
alike (A_sfxflow = DIALS_TO_SFXFLOW @ A_dials).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kernels.crystal.detector import Detector, Panel

DIALS_TO_SFXFLOW = np.diag([-1.0, 1.0, -1.0])


def detector_from_dials(
    origins_mm, fast_axes, slow_axes, pixel_size_mm: float, size_fs_ss, names=None
) -> Detector:
    """One panel per DIALS panel (origin at the first pixel's corner; unit fast/slow axes).

    Panels are stacked as data blocks 0..n-1 (one 2-D array each), as in a CBF or a DIALS
    reflection table's panel number.
    """
    origins = np.asarray(origins_mm, float) @ DIALS_TO_SFXFLOW.T
    fast = np.asarray(fast_axes, float) @ DIALS_TO_SFXFLOW.T * pixel_size_mm
    slow = np.asarray(slow_axes, float) @ DIALS_TO_SFXFLOW.T * pixel_size_mm
    nfs, nss = (int(v) for v in size_fs_ss)
    names = names or [f"panel{i}" for i in range(len(origins))]
    panels = tuple(
        Panel(str(n), tuple(o), tuple(f), tuple(s), 0, nfs, 0, nss, block=i)
        for i, (n, o, f, s) in enumerate(zip(names, origins, fast, slow))
    )
    return Detector(panels, {"detector": tuple(p.name for p in panels)})


def read_dials_detector_json(path: str | Path) -> Detector:
    """The per-panel geometry JSON of the shared CSPAD sets (DIALS frame, mm)."""
    try:
        panels = json.loads(Path(path).read_text())["panels"]
        return detector_from_dials(
            [p["origin_mm"] for p in panels],
            [p["fast_axis"] for p in panels],
            [p["slow_axis"] for p in panels],
            float(panels[0]["pixel_size_mm"][0]),
            panels[0]["image_size_fs_ss"],
            [p["name"] for p in panels],
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{path}: not a DIALS detector geometry ({exc!r})") from None
