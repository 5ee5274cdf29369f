"""Where the dashboard's frames come from: a run's own files in the beamline's experiment folder.

A run folder ``<exp_dir>/runs/<run>`` holds either the run format (``CONCLUDED.json`` + chunks,
calibrated with the run's ``calibration.h5``) or files of a facility format that
:func:`kernels.io.readers.open_frames` reads (CBF, NeXus, HDF5/CXI with the folder's one
``.geom``). Either way a source gives the frame of an event as calibrated data blocks
``(n_blocks, ss, fs)``, the multi-panel :class:`~kernels.crystal.detector.Detector` they belong
to, and the spots the run's trial finds on them (computed here: no stage stores spot lists).

:func:`run_folder` is the one place a requested run name becomes a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernels.crystal.detector import Detector, Panel, from_flat
from kernels.crystal.geometry import DetectorGeometry
from kernels.io.marker import RUN_NAME
from kernels.io.readers.base import FrameReader
from kernels.io.readers.select import open_frames
from kernels.io.runformat import open_run
from kernels.process import default_calibration
from kernels.stages.calibration import calibrate, load_calibration, plan_calibration
from kernels.stages.spotfinder import SpotParams, SpotPlan, find_spots, plan_spotfinding

RUNS_FOLDER = "runs"
MARKER = "CONCLUDED.json"
FRAME_SUFFIXES = {".cbf", ".h5", ".cxi", ".nxs", ".hdf5"}


class FrameNotFound(LookupError):
    """A run, event or file the viewer cannot show (the message names it)."""


@dataclass(frozen=True)
class FoundSpots:
    """Spots in data-block coordinates (pixel corners at integers, as the detector model)."""

    block: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    intensity: np.ndarray

    def __len__(self) -> int:
        return len(self.fs)


def checked_run_name(run: str) -> str:
    """``run`` if it is a run name (``r0001``...: no separator, no dots), else
    :class:`FrameNotFound`: the one check before a requested name becomes part of a path."""
    if not RUN_NAME.fullmatch(run):  # fullmatch: not even a trailing newline
        raise FrameNotFound(f"{run!r} is not a run name (r0001, r0002, ...): no frames to show")
    return run


def run_folder(exp_dir: str | Path, run: str) -> Path:
    """The folder of ``run`` in ``<exp_dir>/runs``, or :class:`FrameNotFound`.

    The name must be a run name (``r0001``...: no separator, no dots), so the folder is a
    direct child of the runs folder whatever the request says; the folder itself may be a link
    (runs kept on other storage).
    """
    folder = Path(exp_dir) / RUNS_FOLDER / checked_run_name(run)
    if not folder.is_dir():
        raise FrameNotFound(f"run {run}: no folder {run} in the experiment's runs folder")
    return folder


def folder_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """Regular, not hidden files directly in ``folder`` with those suffixes."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file()
    )


def panel_geometry(panel: Panel) -> DetectorGeometry:
    """A panel as the flat geometry the spot finder plans with: the beam's foot on its plane
    gives true resolution rings for the ring statistics."""
    corner, fast, slow = (
        np.asarray(v, dtype=float) for v in (panel.corner, panel.fast, panel.slow)
    )
    # corner + a*fast + b*slow = (0, 0, z): the beam axis, in panel pixels (corners at integers)
    a, b = np.linalg.lstsq(np.stack([fast[:2], slow[:2]], axis=1), -corner[:2], rcond=None)[0]
    return DetectorGeometry(
        shape=panel.shape,
        pixel_size_mm=panel.pixel_size_mm,
        distance_mm=abs(float(corner[2])),
        beam_x=float(a) - 0.5,
        beam_y=float(b) - 0.5,
    )


class RunFormatSource:
    """A run in sfxflow's run format, calibrated with the constants the job uses."""

    def __init__(self, folder: Path, spot_params: SpotParams, partial: bool = False):
        self.run = open_run(folder, partial=partial)  # partial: a copy fetched chunk by chunk
        geometry = self.run.geometry
        calib = load_calibration(default_calibration(folder), geometry.shape)
        self.detector = from_flat(geometry, split_panels=True)
        self.events = list(self.run.events)
        self.calibration_plan = plan_calibration(calib, geometry)
        self.spot_plan = plan_spotfinding(geometry, calib.mask, spot_params)

    def blocks(self, chunk: int, event: int) -> np.ndarray:
        return calibrate(self.run.read_frame(chunk, event), self.calibration_plan)[None]

    def block_shape(self) -> tuple[int, ...]:
        """The shape of :meth:`blocks` (known without reading a frame: chunks may be absent)."""
        return (1, *self.run.geometry.shape)

    def wavelength(self, chunk: int, event: int) -> float:
        return self.run.wavelength(chunk, event)

    def spots(self, blocks: np.ndarray) -> FoundSpots:
        found = find_spots(blocks[0], self.spot_plan)
        # the spot finder's pixel centres are at integers, the detector model's corners
        return FoundSpots(
            np.zeros(len(found), dtype=int), found.col + 0.5, found.row + 0.5, found.intensity
        )

    def close(self) -> None:
        self.run.close()


class ReaderSource:
    """A run of a facility format: frames as the file stores them (e.g. CSPAD CBFs:
    dark-subtracted ADU), spots found per panel with the trial's spot finder."""

    def __init__(self, folder: Path, spot_params: SpotParams):
        geoms = folder_files(folder, {".geom"})
        if len(geoms) > 1:
            raise FrameNotFound(f"{folder.name}: {len(geoms)} .geom files; the viewer needs one")
        files = folder_files(folder, FRAME_SUFFIXES)
        if not files:
            raise FrameNotFound(f"run {folder.name}: no frame files in its folder")
        self.reader: FrameReader = open_frames(files, str(geoms[0]) if geoms else None)
        self.detector: Detector = self.reader.detector
        self.events = [(0, i) for i in range(len(self.reader))]
        self.spot_params = spot_params
        self._plans: dict[int, SpotPlan] = {}

    def blocks(self, chunk: int, event: int) -> np.ndarray:
        frame = np.asarray(self.reader.frame(event), dtype=np.float32)
        return np.nan_to_num(frame if frame.ndim == 3 else frame[None], nan=0.0)

    def block_shape(self) -> tuple[int, ...]:
        """The shape of :meth:`blocks` (of the first frame)."""
        return self.blocks(*self.events[0]).shape

    def wavelength(self, chunk: int, event: int) -> float:
        return self.reader.wavelength(event)

    def _plan(self, index: int, panel: Panel) -> SpotPlan:
        if index not in self._plans:
            mask = np.ones(panel.shape, dtype=bool)
            self._plans[index] = plan_spotfinding(panel_geometry(panel), mask, self.spot_params)
        return self._plans[index]

    def spots(self, blocks: np.ndarray) -> FoundSpots:
        parts = []
        for i, p in enumerate(self.detector.panels):
            found = find_spots(blocks[p.block, p.ss0 : p.ss1, p.fs0 : p.fs1], self._plan(i, p))
            fs, ss = found.col + p.fs0 + 0.5, found.row + p.ss0 + 0.5
            parts.append((np.full(len(found), p.block), fs, ss, found.intensity))
        return FoundSpots(*(np.concatenate(column) for column in zip(*parts)))

    def close(self) -> None:
        self.reader.close()


def open_source(
    folder: Path, spot_params: SpotParams, partial: bool = False
) -> RunFormatSource | ReaderSource:
    """The frames of a run folder: the run format when the DAQ's marker is there, else a reader.
    ``partial``: a run-format copy whose chunks arrive one by one (from the center)."""
    if (folder / MARKER).is_file():
        return RunFormatSource(folder, spot_params, partial)
    return ReaderSource(folder, spot_params)
