"""Multi-panel imgCIF/CBF stills (one frame per file), geometry from each file's header."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels.io.readers.base import FrameId, FrameReader, ReaderError
from kernels.io.readers.cbf_geometry import CbfFileError, cbf_table, read_cbf_geometry


def _open(path: str):
    import pycbf

    handle = pycbf.cbf_handle_struct()
    try:
        # the wide reader: cctbx writes header lines longer than CIF 1's 80 characters, which
        # the plain reader accepts only with a warning per line on stderr
        handle.read_widefile(path.encode(), pycbf.MSG_DIGEST)
    except Exception as exc:  # pycbf raises bare Exceptions carrying CBFlib's error codes
        raise ReaderError(f"{path}: not a readable CBF file ({exc})") from None
    return handle


def _arrays(handle, path: str) -> list[np.ndarray]:
    """Every binary array of the file, shaped (sections, rows, cols)."""
    out = []
    handle.find_category(b"array_data")
    handle.find_column(b"data")  # before select_row: CBFlib keeps the column across rows
    for i in range(handle.count_rows()):
        handle.select_row(i)
        (_, _, elsize, signed, _, n, *_, fast, slow, sections, _) = (
            handle.get_integerarrayparameters_wdims_fs()
        )
        dtype = np.dtype(f"{'i' if signed else 'u'}{elsize}")
        data = np.frombuffer(handle.get_integerarray_as_string(), dtype=dtype)
        if data.size != n or n != fast * slow * max(sections, 1):
            raise ReaderError(f"{path}: array {i} holds {data.size} values, not {n}")
        out.append(data.reshape(max(sections, 1), slow, fast))
    return out


class CbfReader(FrameReader):
    """Each file one still; the first file's header gives the detector, the others must agree."""

    def __init__(self, paths: list[str]):
        self.paths = [str(p) for p in paths]
        try:
            self.detector, self.sections = read_cbf_geometry(_open(self.paths[0]), self.paths[0])
        except CbfFileError as exc:
            raise ReaderError(str(exc)) from None
        self.events = [FrameId(p, 0) for p in self.paths]
        self._last: tuple[int, object] | None = None  # the file read last (frame then wavelength)

    def _read(self, index: int):
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        path = self.paths[index]
        handle = _open(path)
        try:
            detector, _ = read_cbf_geometry(handle, path)
        except CbfFileError as exc:
            raise ReaderError(str(exc)) from None
        if not np.allclose(detector.corners, self.detector.corners, atol=1e-6):
            raise ReaderError(f"{path}: its header's geometry differs from {self.paths[0]}'s")
        self._last = (index, handle)
        return handle

    def close(self) -> None:
        """Forget the last file read (CBFlib holds no file open after reading)."""
        self._last = None

    def frame(self, index: int) -> np.ndarray:
        path = self.paths[index]
        arrays = _arrays(self._read(index), path)
        try:
            return np.stack([arrays[s.array][s.sensor, s.ss, s.fs] for s in self.sections])
        except (IndexError, ValueError) as exc:
            raise ReaderError(f"{path}: sections do not fit its arrays ({exc})") from None

    def wavelength(self, index: int) -> float:
        handle = self._read(index)
        rows = cbf_table(handle, "diffrn_radiation_wavelength")
        try:
            return float(rows[0]["wavelength"])
        except (IndexError, KeyError, ValueError):
            raise ReaderError(f"{Path(self.paths[index])}: no wavelength in the header") from None
