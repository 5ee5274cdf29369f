"""The one interface every reader of foreign detector files gives.

A reader knows its detector (panels stacked: panel i's pixels are ``frame[i]``), how many
frames its files hold, which (file, event) each frame came from, and each frame's wavelength.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from kernels.crystal.detector import Detector, Panel

PLANCK_EV_A = 12398.419843  # h c in eV Angstrom


class ReaderError(ValueError):
    """Files that cannot be read as frames; the message names the file."""


@dataclass(frozen=True)
class FrameId:
    """Where a frame came from: its file and the event (frame index) inside it."""

    file: str
    event: int


class FrameReader(ABC):
    """Frames of a run's files, read one at a time."""

    detector: Detector
    events: list[FrameId]
    # why the frames are not calibrated (not in photons or dark-subtracted ADU), if they are not
    raw_statement: str | None = None

    def __len__(self) -> int:
        return len(self.events)

    @abstractmethod
    def frame(self, index: int) -> np.ndarray:
        """Pixels of frame `index`, (panels, rows, cols), in the panels' order."""

    @abstractmethod
    def wavelength(self, index: int) -> float:
        """Wavelength (Angstrom) of frame `index`."""

    def event_tags(self) -> dict[str, list[np.ndarray]]:
        """Per-event tags (laser on/off, delay) per tag, their values per file in the run's
        order; none unless the reader was told where its files keep them."""
        return {}

    def good_pixels(self) -> np.ndarray:
        """(panels, rows, cols) True on the pixels to use; every pixel unless the files or the
        geometry mark some bad."""
        p = self.detector.panels
        return np.ones((len(p), *p[0].shape), dtype=bool)

    @abstractmethod
    def close(self) -> None:
        """Release the files the reader holds open."""

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stacked(detector: Detector, where: str) -> Detector:
    """The same panels renumbered as a stack: panel i is data block i at fs/ss from 0.

    Raises
    ------
    ReaderError
        Panels of different sizes, which cannot share one stacked array.
    """
    shapes = {p.shape for p in detector.panels}
    if len(shapes) != 1:
        raise ReaderError(f"{where}: panels of different sizes {sorted(shapes)} cannot be stacked")
    panels = tuple(
        Panel(p.name, p.corner, p.fast, p.slow, 0, p.fs1 - p.fs0, 0, p.ss1 - p.ss0, block=i)
        for i, p in enumerate(detector.panels)
    )
    return Detector(panels, detector.groups)


def photon_energy_to_wavelength(energy_eV: float, where: str) -> float:
    if not np.isfinite(energy_eV) or energy_eV <= 0:
        raise ReaderError(f"{where}: photon energy {energy_eV} eV is not positive")
    return PLANCK_EV_A / float(energy_eV)
