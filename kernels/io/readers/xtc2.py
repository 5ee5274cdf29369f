"""LCLS-II XTC2 files through psana (PyPI ``psana``, the ``xtc2`` extra), read offline.

psana runs with ``skip_calib_load='all'``: the calibration constants (pedestals, gains, the
beamline's geometry) live in SLAC's calibration database, not in the files, so the frames are
the detector's raw ADU (with its gain bits) and the panels come from a CrystFEL geometry whose
data layout is psana's raw array, either as OM and psana's own converter write it (segments
stacked along ss: ``dim0 = %``, ``dim1 = ss``, ``dim2 = fs``) or one segment per fixed index
(``dim1 = <segment>``). The photon energy is the geometry's (the shared files carry no beam
data). Each file's dgrams are checked to fill it exactly: psana stops quietly at a truncated
dgram and would give fewer frames than were written.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from kernels.io.geom import GeomFile, read_geom
from kernels.io.geom_detector import check_data_shape, to_detector
from kernels.io.readers.base import FrameId, FrameReader, ReaderError, stacked
from kernels.io.readers.hdf5_geom import panel_dims, panel_pixels, stated_wavelength

# A dgram: 12 bytes of transition header (time stamp, env) then its Xtc, whose 12-byte header
# ends with the extent, the Xtc's size in bytes including that header.
TRANSITION_BYTES = 12
XTC_HEADER_BYTES = 12
RAW_STATEMENT = (
    "the frames are raw ADU with the gain bits: psana reads pedestals and gains from SLAC's "
    "calibration database, which an offline reader (skip_calib_load='all') does not reach"
)


def dgram_count(path: str) -> int:
    """The number of dgrams that fill the XTC2 file `path` exactly.

    Raises
    ------
    ReaderError
        A dgram whose extent is impossible or runs past the end of the file (truncated), naming
        the file, the dgram and its byte offset.
    """
    size = os.path.getsize(path)
    offset = count = 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset + TRANSITION_BYTES + XTC_HEADER_BYTES - 4)
            raw = f.read(4)
            extent = struct.unpack("<I", raw)[0] if len(raw) == 4 else 0
            end = offset + TRANSITION_BYTES + extent
            if extent < XTC_HEADER_BYTES or end > size:
                raise ReaderError(
                    f"{path}: dgram {count} at byte {offset} needs {end - offset} bytes but the "
                    f"file ends at byte {size}: truncated or not an XTC2 file"
                )
            offset, count = end, count + 1
    if not count:
        raise ReaderError(f"{path}: empty, not an XTC2 file")
    return count


def _psana():
    try:
        import psana
    except ImportError:
        raise ReaderError(
            "XTC2 files need psana: install the xtc2 extra (make install-xtc2)"
        ) from None
    return psana


def area_detectors(run) -> list[str]:
    """Names of the run's detectors psana reads as images (a ``raw`` with ``image``)."""
    return sorted(n for (n, kind), m in run.detinfo.items() if kind == "raw" and "image" in m)


class Xtc2Run:
    """One XTC2 file's run and detector, its events read in order (psana streams them)."""

    def __init__(self, path: str, detector_name: str | None):
        psana = _psana()
        self.path = path
        try:
            self.run = next(psana.DataSource(files=path, skip_calib_load="all").runs())
        except Exception as exc:  # psana raises whatever its parsing meets (AttributeError...)
            raise ReaderError(f"{path}: psana cannot read it as XTC2 ({exc!r})") from None
        names = area_detectors(self.run)
        name = detector_name or (names[0] if len(names) == 1 else None)
        if name not in names:
            raise ReaderError(
                f"{path}: choose the detector among its area detectors {names} "
                f"(got {detector_name!r})"
            )
        self.name = name
        self.detector = self.run.Detector(name)
        self._events = self.run.events()
        self.next_event = 0

    def event(self, index: int):
        """The psana event `index` of the file: forward only (reopen to go back)."""
        if index < self.next_event:
            raise ValueError(f"event {index} is behind the stream (at {self.next_event})")
        for evt in self._events:
            self.next_event += 1
            if self.next_event - 1 == index:
                return evt
        raise ReaderError(f"{self.path}: no event {index} (the file holds {self.next_event})")

    def timestamps(self) -> list[int]:
        """Every event's time stamp (the LCLS event id), reading the stream to its end."""
        stamps = [int(evt.timestamp) for evt in self._events]
        self.next_event = len(stamps)
        return stamps

    def raw(self, evt) -> np.ndarray:
        data = self.detector.raw.raw(evt)
        if data is None:
            raise ReaderError(f"{self.path}: an event with no {self.name} data")
        return data


class Xtc2Reader(FrameReader):
    """Raw frames of an area detector in LCLS-II XTC2 files, panels from a CrystFEL geometry.

    Parameters
    ----------
    paths : list of str
        The run's ``.xtc2`` files, in order.
    geometry : GeomFile or str
        CrystFEL geometry over psana's raw array (see the module's docstring).
    detector_name : str, optional
        The area detector to read; needed when a file holds several.
    """

    raw_statement: str | None = RAW_STATEMENT

    def __init__(
        self, paths: list[str], geometry: GeomFile | str, detector_name: str | None = None
    ):
        self.paths = [str(p) for p in paths]
        self.geom = geometry if isinstance(geometry, GeomFile) else read_geom(geometry)
        full = to_detector(self.geom)
        self.panels = full.panels
        self.roles = [[d for d in panel_dims(v, 3) if d != "%"] for v in self.geom.panels.values()]
        self.events: list[FrameId] = []
        self.timestamps: list[int] = []
        self.detector_name = detector_name
        for path in self.paths:
            dgram_count(path)
            xtc = Xtc2Run(path, detector_name)
            self.detector_name = xtc.name
            stamps = xtc.timestamps()
            if not stamps:
                raise ReaderError(f"{path}: no {xtc.name} events")
            self.events += [FrameId(path, e) for e in range(len(stamps))]
            self.timestamps += stamps
        self.detector = stacked(full, self.geom.path)
        self._run: Xtc2Run | None = None
        self._check_layout(self.frame_data(0), full)

    def _check_layout(self, data: np.ndarray, full) -> None:
        """The geometry's panels lie inside psana's raw array (segments, rows, cols)."""
        for roles, panel in zip(self.roles, self.panels):
            shape = self._as_roles(data, roles).shape
            fixed = [int(d) for d in roles if d not in ("ss", "fs")]
            if fixed and fixed[0] >= len(data):
                raise self.geom.error(
                    f"panel {panel.name}: segment {fixed[0]} is not in the raw data {data.shape} "
                    f"of {self.paths[0]}",
                    panel.name,
                    "dim1",
                )
            check_data_shape(self.geom, full, panel.block, shape[-2:])

    @staticmethod
    def _as_roles(data: np.ndarray, roles: list[str]) -> np.ndarray:
        """psana's (segments, rows, cols) as the panel's axes: 2-D (segments stacked along ss)
        for an (ss, fs) layout, as it is for (segment, ss, fs)."""
        return data.reshape(-1, data.shape[-1]) if len(roles) == 2 else data

    def frame_data(self, index: int) -> np.ndarray:
        """psana's raw array (segments, rows, cols) of frame `index`."""
        event = self.events[index]
        if self._run is None or self._run.path != event.file or self._run.next_event > event.event:
            self._run = Xtc2Run(event.file, self.detector_name)
        return self._run.raw(self._run.event(event.event))

    def frame(self, index: int) -> np.ndarray:
        data = self.frame_data(index)
        return np.stack(
            [
                panel_pixels(self._as_roles(data, roles), roles, panel)
                for roles, panel in zip(self.roles, self.panels)
            ]
        )

    def wavelength(self, index: int) -> float:
        event = self.events[index]
        return stated_wavelength(self.geom, "XTC2 files", f"{event.file} event {event.event}")

    def close(self) -> None:
        self._run = None
