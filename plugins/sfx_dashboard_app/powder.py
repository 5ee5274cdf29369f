"""The virtual powder pattern of a run: the found spots of its hits summed in the detector plane
and radially (against 2θ and resolution), to check beam centre and geometry at a glance.

Rings that are round and centred on the beam (the lab's z axis) and sharp in the radial profile
say the geometry is right; an offset centre smears them. Spots are found on the fly (the stages
store only their count) on at most :data:`MAX_FRAMES` hits spread evenly over the run; each
result is kept in a small LRU keyed by the run's list of hits, so it is recomputed only when
new hits arrive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .frames import lab_positions

MAX_FRAMES = 100
PLANE_BINS = 150  # per axis of the 2-D sum
RADIAL_BINS = 300
CACHED = 8


def sampled(hits: list, limit: int = MAX_FRAMES) -> list:
    """At most ``limit`` hits, spread evenly over the run."""
    if len(hits) <= limit:
        return list(hits)
    return [hits[i] for i in np.linspace(0, len(hits) - 1, limit).round().astype(int)]


def spot_positions(source, events: list) -> tuple[np.ndarray, np.ndarray]:
    """Lab positions (n, 3) mm of the spots found on ``events`` and each spot's wavelength (Å)."""
    labs, waves = [np.zeros((0, 3))], [np.zeros(0)]
    for chunk, event in events:
        spots = source.spots(source.blocks(chunk, event))
        lab = lab_positions(source.detector, spots.block, spots.fs, spots.ss)
        lab = lab[np.isfinite(lab[:, 0])]
        labs.append(lab)
        waves.append(np.full(len(lab), source.wavelength(chunk, event)))
    return np.concatenate(labs), np.concatenate(waves)


def detector_extent(detector) -> tuple[float, float, float, float]:
    """(x min, x max, y min, y max) mm of the panels' corners."""
    corners = []
    for i, p in enumerate(detector.panels):
        rows, cols = p.shape
        corners.append(detector.lab_position([i] * 4, [0, cols, 0, cols], [0, 0, rows, rows]))
    xy = np.concatenate(corners)[:, :2]
    return (
        float(xy[:, 0].min()),
        float(xy[:, 0].max()),
        float(xy[:, 1].min()),
        float(xy[:, 1].max()),
    )


def two_theta_deg(lab: np.ndarray) -> np.ndarray:
    """Scattering angle 2θ (degrees) of lab positions (n, 3) mm, the beam along +z through 0."""
    return np.degrees(np.arctan2(np.hypot(lab[:, 0], lab[:, 1]), lab[:, 2]))


def bragg_d(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """Resolution d = λ / (2 sin θ) in Å (inf at 2θ = 0)."""
    with np.errstate(divide="ignore"):
        return wavelength / (2 * np.sin(np.radians(two_theta) / 2))


def radial_profile(lab: np.ndarray, wavelength: np.ndarray) -> dict:
    """Spot counts against 2θ (degrees), with the resolution (Å) of each bin's centre."""
    two_theta = two_theta_deg(lab)
    top = float(two_theta.max()) if two_theta.size else 1.0
    counts, edges = np.histogram(two_theta, bins=RADIAL_BINS, range=(0.0, top * 1.02))
    centres = (edges[:-1] + edges[1:]) / 2
    mean_wavelength = float(wavelength.mean()) if wavelength.size else float("nan")
    d = bragg_d(centres, mean_wavelength)
    return {
        "two_theta_deg": centres.round(4).tolist(),
        "counts": counts.tolist(),
        "d_angstrom": [round(float(v), 3) if np.isfinite(v) else None for v in d],
        "wavelength_angstrom": mean_wavelength if np.isfinite(mean_wavelength) else None,
    }


def virtual_powder(source, hits: list) -> dict:
    """The 2-D sum (lab x, y mm) and the radial profile of the spots of a run's hits."""
    used = sampled(hits)
    lab, wavelength = spot_positions(source, used)
    x0, x1, y0, y1 = detector_extent(source.detector)
    plane, x_edges, y_edges = np.histogram2d(
        lab[:, 1], lab[:, 0], bins=PLANE_BINS, range=((y0, y1), (x0, x1))
    )
    return {
        "hits": len(hits),
        "frames_used": len(used),
        "spots": len(lab),
        "x_mm": ((x_edges[:-1] + x_edges[1:]) / 2).round(3).tolist(),
        "y_mm": ((y_edges[:-1] + y_edges[1:]) / 2).round(3).tolist(),
        "plane": plane.astype(int).tolist(),  # rows along y, columns along x
        "radial": radial_profile(lab, wavelength),
    }


class PowderCache:
    """A bounded LRU of computed powder patterns (key: run folder, trial, hits)."""

    def __init__(self, size: int = CACHED):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, source, hits: list) -> dict:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            result = virtual_powder(source, hits)
            self._entries[key] = result
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return result
