"""A run's cell-free-indexed spots in the form geometry refinement reads (``spots.h5``), and the
run's own detector as the ``.geom`` to start refining from (``run.geom``).

The flat detector is split into its mask panels (``from_flat(..., split_panels=True)``), so each
sensor is a group that refinement can move. Every lattice found is one image of the file: its
orientation A = basis⁻¹ (s = A h) and the indexed spots with their Miller indices in that basis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels.cell.fft_indexing import Lattice
from kernels.crystal.detector import Detector, from_flat
from kernels.crystal.geometry import DetectorGeometry
from kernels.geomrefine.spots import IndexedSpots, concatenate, write_spots
from kernels.io.geom import write_geom
from kernels.io.geom_detector import from_detector

SPOTS_FILE = "spots.h5"
GEOM_FILE = "run.geom"


def run_detector(geometry: DetectorGeometry) -> Detector:
    """The run's flat detector, one panel per mask panel."""
    return from_flat(geometry, split_panels=True)


def flat_to_panel(detector: Detector, col: np.ndarray, row: np.ndarray):
    """Panel index and panel-local (fs, ss) of flat pixel positions (centres at integers, as
    the spot finder gives them); panel -1 for a position in no panel (a gap)."""
    col, row = np.asarray(col, dtype=float), np.asarray(row, dtype=float)
    c, r = np.rint(col), np.rint(row)
    panel = np.full(len(col), -1)
    for i, p in enumerate(detector.panels):
        inside = (c >= p.fs0) & (c < p.fs1) & (r >= p.ss0) & (r < p.ss1) & (panel < 0)
        panel[inside] = i
    fs0 = np.array([p.fs0 for p in detector.panels])[panel]
    ss0 = np.array([p.ss0 for p in detector.panels])[panel]
    return panel, col - fs0 + 0.5, row - ss0 + 0.5


@dataclass
class SpotsCollector:
    """Gathers each found lattice's indexed spots, image by image, for ``spots.h5``."""

    detector: Detector
    parts: list[IndexedSpots] = field(default_factory=list)

    def add(self, lattice: Lattice, s: np.ndarray, col, row, wavelength: float) -> None:
        """One lattice of an image: s (n, 3) and flat positions of all its image's spots."""
        panel, fs, ss = flat_to_panel(self.detector, col, row)
        keep = lattice.indexed & (panel >= 0)
        self.parts.append(
            IndexedSpots(
                image=np.zeros(int(keep.sum()), dtype=int),
                hkl=np.rint(s[keep] @ lattice.basis.T).astype(int),
                panel=panel[keep],
                fs=fs[keep],
                ss=ss[keep],
                A=np.linalg.inv(lattice.basis)[None],
                wavelength=np.array([wavelength]),
            )
        )

    def spots(self) -> IndexedSpots:
        """Everything gathered so far (no image when nothing was indexed)."""
        if not self.parts:
            none = np.zeros(0)
            return IndexedSpots(none, np.zeros((0, 3)), none, none, none, np.zeros((0, 3, 3)), none)
        return concatenate(self.parts)


def write_run_outputs(collector: SpotsCollector, out_dir) -> None:
    """``spots.h5`` and the run's detector as ``run.geom`` in `out_dir`."""
    write_spots(out_dir / SPOTS_FILE, collector.spots())
    write_geom(from_detector(collector.detector, str(out_dir / GEOM_FILE)), out_dir / GEOM_FILE)
