"""HDF5/CXI frames laid out as a CrystFEL geometry file says (Cheetah, OM, SwissFEL, Jungfraujoch).

Each panel reads ``data`` at the index its ``dim0..dimN`` give: ``%`` the event, ``ss``/``fs``
its pixel ranges, a number a fixed index (a module of a stacked array). Compressed datasets
(bitshuffle/LZ4, LZ4, zstd, ...) decode through ``hdf5plugin``'s filters. Camera length and
photon energy may name fields of the file, as CrystFEL allows; such a camera length is in mm
unless the field's ``units`` attribute says ``m`` (CrystFEL reads it so too).
"""

from __future__ import annotations

import h5py
import numpy as np

from kernels.io.geom import GeomFile, read_geom
from kernels.io.geom_detector import check_data_shape, to_detector
from kernels.io.readers.base import (
    FrameId,
    FrameReader,
    ReaderError,
    photon_energy_to_wavelength,
    stacked,
)

ENERGY_UNITS = {"eV": 1.0, "keV": 1000.0}


def panel_dims(values: dict[str, str], ndim: int) -> list[str]:
    """A panel's dimension roles, with CrystFEL's default (ss, fs) or (%, ss, fs)."""
    dims = [values[f"dim{i}"] for i in range(10) if f"dim{i}" in values]
    return dims or (["ss", "fs"] if ndim == 2 else ["%", "ss", "fs"])


def _field(f: h5py.File, name: str, where: str):
    if name not in f:
        raise ReaderError(f"{where}: the field {name} named by the geometry is not in the file")
    return f[name]


class Hdf5GeomReader(FrameReader):
    """Frames of HDF5/CXI files read through a CrystFEL geometry."""

    def __init__(self, paths: list[str], geometry: GeomFile | str):
        import hdf5plugin  # noqa: F401  (registers the compression filters with HDF5)

        self.geom = geometry if isinstance(geometry, GeomFile) else read_geom(geometry)
        self.paths = [str(p) for p in paths]
        self.files: dict[str, h5py.File] = {}
        full = to_detector(self.geom, clen_m=self._clen_m(self.paths[0]))
        self.panel_values = list(self.geom.panels.values())
        self.panels = full.panels
        self.events = []
        for path in self.paths:
            count = self._check_file(path, full)
            self.events += [FrameId(path, e) for e in range(count)]
        self.detector = stacked(full, self.geom.path)

    def _file(self, path: str) -> h5py.File:
        if path not in self.files:
            try:
                self.files[path] = h5py.File(path, "r")
            except OSError as exc:
                raise ReaderError(f"{path}: not a readable HDF5 file ({exc})") from None
        return self.files[path]

    def _clen_m(self, path: str) -> float | None:
        names = {
            v.get("clen", self.geom.globals.get("clen", "")) for v in self.geom.panels.values()
        }
        fields = [n for n in names if n.startswith("/")]
        if not fields:
            return None
        field = _field(self._file(path), fields[0], path)
        unit = field.attrs.get("units", b"mm")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        return float(np.ravel(field[()])[0]) * (1.0 if unit == "m" else 1e-3)

    def _check_file(self, path: str, detector) -> int:
        """Every panel's data is there, big enough and with one event count: that count."""
        f = self._file(path)
        counts = set()
        for values, panel in zip(self.panel_values, detector.panels):
            if "data" not in values:
                raise self.geom.error(
                    f"panel {panel.name} has no data path ('data = ...')", panel.name
                )
            if values["data"] not in f:
                raise self.geom.error(
                    f"{path} has no dataset {values['data']} for panel {panel.name}",
                    panel.name,
                    "data",
                )
            shape = f[values["data"]].shape
            dims = panel_dims(values, len(shape))
            if len(dims) != len(shape) or "ss" not in dims or "fs" not in dims:
                raise self.geom.error(
                    f"{path}: {values['data']} has shape {shape}, the layout is {dims}",
                    panel.name,
                    "dim0",
                )
            check_data_shape(
                self.geom, detector, panel.block, (shape[dims.index("ss")], shape[dims.index("fs")])
            )
            counts.add(shape[dims.index("%")] if "%" in dims else 1)
        if len(counts) != 1:
            raise ReaderError(f"{path}: the panels' datasets hold different event counts {counts}")
        return counts.pop()

    def frame(self, index: int) -> np.ndarray:
        event = self.events[index]
        f = self._file(event.file)
        out = []
        for values, panel in zip(self.panel_values, self.panels):
            dims = panel_dims(values, f[values["data"]].ndim)
            where = {
                "%": event.event,
                "ss": slice(panel.ss0, panel.ss1),
                "fs": slice(panel.fs0, panel.fs1),
            }
            block = f[values["data"]][tuple(where[d] if d in where else int(d) for d in dims)]
            out.append(block.T if dims.index("fs") < dims.index("ss") else block)
        return np.stack(out)

    def wavelength(self, index: int) -> float:
        event = self.events[index]
        text = self.geom.globals.get("photon_energy")
        if text is None:
            raise self.geom.error("no photon_energy: the wavelength is unknown")
        if text.startswith("/"):
            values = np.ravel(_field(self._file(event.file), text, event.file)[()])
            energy = float(values[event.event] if len(values) > 1 else values[0])
        else:
            number, *unit = text.split()
            try:
                energy = float(number) * ENERGY_UNITS[unit[0] if unit else "eV"]
            except (ValueError, KeyError):
                raise self.geom.error(
                    f"photon_energy = {text!r} is not a number of eV", "", "photon_energy"
                ) from None
        return photon_energy_to_wavelength(energy, f"{event.file} event {event.event}")

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()
