"""HDF5/CXI frames laid out as a CrystFEL geometry file says (Cheetah, OM, SwissFEL, Jungfraujoch).

Each panel reads ``data`` at the index its ``dim0..dimN`` give: ``%`` the event, ``ss``/``fs``
its pixel ranges, a number a fixed index (a module of a stacked array). Compressed datasets
(bitshuffle/LZ4, LZ4, zstd, ...) decode through ``hdf5plugin``'s filters. Camera length and
photon energy (or wavelength) may name fields of the file, with a unit after the name, as
CrystFEL allows; without one, the field's ``units`` attribute decides, else CrystFEL's defaults
(camera length in mm, energy in eV). A panel without ``data`` reads CrystFEL's ``/data/data``.
Per-event tags (a pump laser's on/off, a delay) are read from the fields named for them
(``tag_fields``: tag -> field, one number per event in every file), as CrystFEL's
``--copy-header`` copies such fields.
"""

from __future__ import annotations

import h5py
import numpy as np

from kernels.crystal.detector import Panel
from kernels.io.geom import GeomFile, read_geom
from kernels.io.geom_detector import check_data_shape, to_detector
from kernels.io.readers.base import (
    FrameId,
    FrameReader,
    ReaderError,
    photon_energy_to_wavelength,
    stacked,
)
from kernels.io.readers.geom_mask import good_pixels

ENERGY_UNITS = {"eV": 1.0, "keV": 1000.0}
WAVELENGTH_UNITS = {"m": 1e10, "A": 1.0}  # to Angstrom
LENGTH_UNITS = {"m": 1.0, "mm": 1e-3}


def panel_dims(values: dict[str, str], ndim: int) -> list[str]:
    """A panel's dimension roles, with CrystFEL's default (ss, fs) or (%, ss, fs)."""
    dims = [values[f"dim{i}"] for i in range(10) if f"dim{i}" in values]
    return dims or (["ss", "fs"] if ndim == 2 else ["%", "ss", "fs"])


def stated_wavelength(geom: GeomFile, files: str, where: str) -> float:
    """The wavelength (Angstrom) from the geometry's ``photon_energy`` number (eV unless keV
    follows), for `files` whose data hold no energy; `where` names the frame for errors."""
    text = geom.globals.get("photon_energy", "")
    number, *unit = text.split() or [""]
    try:
        energy = float(number) * ENERGY_UNITS[unit[0] if unit else "eV"]
    except (ValueError, KeyError):
        raise geom.error(
            f"photon_energy must be a number of eV (got {text!r}): {files} hold no photon energy",
            "",
            "photon_energy",
        ) from None
    return photon_energy_to_wavelength(energy, where)


def panel_pixels(data: np.ndarray, roles: list[str], panel: Panel) -> np.ndarray:
    """A panel's (ss, fs) pixels of one event's `data`, whose axes have the `roles` of the
    panel's dims without the event's (``ss``, ``fs`` or a fixed index)."""
    where = {"ss": slice(panel.ss0, panel.ss1), "fs": slice(panel.fs0, panel.fs1)}
    block = data[tuple(where[d] if d in where else int(d) for d in roles)]
    return block.T if roles.index("fs") < roles.index("ss") else block


def _field(f: h5py.File, name: str, where: str, named_by: str = "the geometry"):
    if name not in f:
        raise ReaderError(f"{where}: the field {name} named by {named_by} is not in the file")
    return f[name]


class Hdf5GeomReader(FrameReader):
    """Frames of HDF5/CXI files read through a CrystFEL geometry."""

    def __init__(
        self, paths: list[str], geometry: GeomFile | str, tag_fields: dict[str, str] | None = None
    ):
        import hdf5plugin  # noqa: F401  (registers the compression filters with HDF5)

        self.tag_fields = dict(tag_fields or {})
        self.geom = geometry if isinstance(geometry, GeomFile) else read_geom(geometry)
        self.paths = [str(p) for p in paths]
        self.files: dict[str, h5py.File] = {}
        full = to_detector(self.geom, clen_m=self._clen_m(self.paths[0]))
        self.panel_values = [{"data": "/data/data", **v} for v in self.geom.panels.values()]
        self.panels = full.panels
        self.events = []
        for path in self.paths:
            count = self._check_file(path, full)
            self.events += [FrameId(path, e) for e in range(count)]
        self.detector = stacked(full, self.geom.path)
        self._full = full

    def _file(self, path: str) -> h5py.File:
        if path not in self.files:
            try:
                self.files[path] = h5py.File(path, "r")
            except OSError as exc:
                raise ReaderError(f"{path}: not a readable HDF5 file ({exc})") from None
        return self.files[path]

    def _quantity(self, key: str, event: FrameId, units: dict[str, float], default: str):
        """A global value in `units` (scale to the base unit): a number with an optional unit,
        or a data field (per event or one for the file) with an optional unit after it."""
        text = self.geom.globals[key]
        value, *unit = text.split()
        name = (unit[0] if unit else None) or default
        if value.startswith("/"):
            field = _field(self._file(event.file), value, event.file)
            values = np.ravel(field[()])
            number = float(values[event.event] if len(values) > 1 else values[0])
            if not unit:
                stated = field.attrs.get("units", default.encode())
                name = stated.decode() if isinstance(stated, bytes) else str(stated)
        else:
            try:
                number = float(value)
            except ValueError:
                raise self.geom.error(f"{key} = {text!r} is not a number", "", key) from None
        if name not in units:
            raise self.geom.error(
                f"{key} = {text!r}: unit {name!r} is not one of {sorted(units)}", "", key
            )
        return number * units[name]

    def _clen_m(self, path: str) -> float | None:
        """The camera length from the first file where the geometry names a field for it
        (CrystFEL: a field without units is in mm)."""
        if not self.geom.globals.get("clen", "").startswith("/"):
            return None
        return self._quantity("clen", FrameId(path, 0), LENGTH_UNITS, "mm")

    def _check_file(self, path: str, detector) -> int:
        """Every panel's data is there, big enough and with one event count: that count."""
        f = self._file(path)
        counts = set()
        for values, panel in zip(self.panel_values, detector.panels):
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
        events: dict[str, np.ndarray] = {}  # each dataset's event read (decompressed) once
        out = []
        for values, panel in zip(self.panel_values, self.panels):
            dataset = f[values["data"]]
            dims = panel_dims(values, dataset.ndim)
            if values["data"] not in events:
                events[values["data"]] = dataset[
                    tuple(event.event if d == "%" else slice(None) for d in dims)
                ]
            rest = [d for d in dims if d != "%"]
            out.append(panel_pixels(events[values["data"]], rest, panel))
        return np.stack(out)

    def wavelength(self, index: int) -> float:
        event = self.events[index]
        if "wavelength" in self.geom.globals:
            return self._quantity("wavelength", event, WAVELENGTH_UNITS, "m")
        if "photon_energy" not in self.geom.globals:
            raise self.geom.error("no photon_energy or wavelength: the wavelength is unknown")
        energy = self._quantity("photon_energy", event, ENERGY_UNITS, "eV")
        return photon_energy_to_wavelength(energy, f"{event.file} event {event.event}")

    def event_tags(self) -> dict[str, list[np.ndarray]]:
        """The `tag_fields`' values per file (refused naming the file: missing, or not one
        number per event)."""
        counts = {path: 0 for path in self.paths}
        for event in self.events:
            counts[event.file] += 1
        tags: dict[str, list[np.ndarray]] = {}
        for name, field in self.tag_fields.items():
            tags[name] = []
            for path, count in counts.items():
                values = _field(self._file(path), field, path, f"tag {name}")[()]
                if np.shape(values) != (count,) or not np.issubdtype(values.dtype, np.number):
                    raise ReaderError(
                        f"{path}: tag {name} from {field} is not one number per event ({count})"
                    )
                tags[name].append(np.asarray(values, dtype=np.float64))
        return tags

    def good_pixels(self) -> np.ndarray:
        """Pixels outside the geometry's bad regions and no_index panels, good in its mask."""

        def dims(values: dict[str, str]) -> list[str]:
            return panel_dims(values, self._file(self.paths[0])[values["data"]].ndim)

        return good_pixels(self.geom, self.panel_values, self._full, dims, self.paths[0])

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()
