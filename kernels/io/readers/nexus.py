"""NeXus/NXmx master files: detector geometry, wavelength and the data files they link.

NXmx uses the McStas frame, beam along +z like sfxflow, so no axis changes. A module's pixel
(0, 0) sits at the end of its ``fast_pixel_direction`` chain of NXtransformations (each a
translation or rotation of ``value`` along ``vector``, then ``offset``, up to
``depends_on = "."``), as dxtbx reads it. Masters without NXdetector_module (Dectris's older
ones) give one panel from the beam centre, distance and pixel size. Frames live in external
data files (links or virtual datasets); a missing one is named instead of read as zeros.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from kernels.crystal.detector import Detector, Panel, axis_rotation, vector3
from kernels.io.readers.base import FrameId, FrameReader, ReaderError

LENGTH_M = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "microns": 1e-6}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def transform_chain(f: h5py.File, name: str, step: float | None = None) -> np.ndarray:
    """Lab position (mm) of the origin carried through the transformation `name` and those it
    depends on; `step` replaces the first transformation's value (a pixel step)."""
    point = np.zeros(3)
    for _ in range(64):
        if name in (".", ""):
            return point
        if name not in f:
            raise ReaderError(f"{f.filename}: transformation {name} is not in the file")
        t = f[name]
        value = float(np.ravel(t[()])[0]) if step is None else step
        step = None
        kind = _text(t.attrs.get("transformation_type", "translation"))
        scale = LENGTH_M.get(_text(t.attrs.get("units", "m")), 1.0) * 1000.0
        vector = np.asarray(t.attrs.get("vector", (0, 0, 1)), float)
        if kind == "rotation":
            point = axis_rotation(vector, value) @ point
        else:
            point = point + vector * value * scale
        offset_scale = LENGTH_M.get(
            _text(t.attrs.get("offset_units", t.attrs.get("units", "m"))), 1.0
        )
        point = point + np.asarray(t.attrs.get("offset", (0, 0, 0)), float) * offset_scale * 1000.0
        name = _resolve(name, _text(t.attrs.get("depends_on", ".")))
    raise ReaderError(f"{f.filename}: the transformation chain from {name} loops")


def _resolve(current: str, target: str) -> str:
    """A depends_on path, absolute or relative to the current transformation's group."""
    if target in (".", "") or target.startswith("/"):
        return target
    return f"{current.rsplit('/', 1)[0]}/{target}"


def _module_panel(f: h5py.File, module: str, frame_shape: tuple) -> Panel:
    """One NXdetector_module as a panel; data_size/data_origin are (slow, fast) as NXmx says,
    or (fast, slow) where that is what fits the data (older writers)."""
    fast_name, slow_name = f"{module}/fast_pixel_direction", f"{module}/slow_pixel_direction"
    origin = transform_chain(f, fast_name, 0.0)
    fast = transform_chain(f, fast_name, float(f[fast_name][()])) - origin
    slow = transform_chain(f, slow_name, float(f[slow_name][()]))
    slow = slow - transform_chain(f, slow_name, 0.0)
    size = [int(v) for v in f[f"{module}/data_size"][()]]
    start = [int(v) for v in f[f"{module}/data_origin"][()]]
    if tuple(size[::-1]) == tuple(frame_shape[-2:]) != tuple(size):
        size, start = size[::-1], start[::-1]
    (nss, nfs), (ss0, fs0) = size, start
    name = module.rsplit("/", 1)[-1]
    return Panel(
        name, vector3(origin), vector3(fast), vector3(slow), fs0, fs0 + nfs, ss0, ss0 + nss
    )


def _flat_panel(f: h5py.File, detector: str) -> Panel:
    d = f[detector]
    px_x = float(d["x_pixel_size"][()]) * 1000.0
    px_y = float(d["y_pixel_size"][()]) * 1000.0
    distance = float(np.ravel(d["detector_distance"][()])[0]) * 1000.0
    spec = d["detectorSpecific"]
    nfs, nss = int(spec["x_pixels_in_detector"][()]), int(spec["y_pixels_in_detector"][()])
    bx, by = float(d["beam_center_x"][()]), float(d["beam_center_y"][()])
    orientation = "geometry/orientation/value"  # Dectris: fast then slow unit directions
    axes = np.ravel(d[orientation][()]) if orientation in d else np.array([1, 0, 0, 0, 1, 0])
    fast, slow = axes[:3] * px_x, axes[3:6] * px_y
    corner = -bx * fast - by * slow + np.array([0.0, 0.0, distance])  # beam centre in pixels
    return Panel("detector", vector3(corner), vector3(fast), vector3(slow), 0, nfs, 0, nss)


def _data_files(f: h5py.File, master: Path) -> list[tuple[str, Path]]:
    """(dataset, file) of every external data file the master's entry/data needs."""
    out = []
    data = f["entry/data"]
    for name in data:
        link = data.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            out.append((f"entry/data/{name}", master.parent / link.filename))
    if "data" in data and isinstance(data.get("data", getlink=True), h5py.HardLink):
        ds = data["data"]
        if isinstance(ds, h5py.Dataset) and ds.is_virtual:
            for source in ds.virtual_sources():
                if source.file_name != ".":
                    out.append(("entry/data/data", master.parent / source.file_name))
    return out


class NexusReader(FrameReader):
    """Frames of one NXmx master file and its data files."""

    def __init__(self, master: str | Path):
        self.master = Path(master)
        try:
            self.file = h5py.File(self.master, "r")
        except OSError as exc:
            raise ReaderError(f"{master}: not a readable HDF5 file ({exc})") from None
        f = self.file
        try:
            self._wavelength = float(
                np.ravel(f["entry/instrument/beam/incident_wavelength"][()])[0]
            )
            detector = "entry/instrument/detector"
            modules = [
                f"{detector}/{k}"
                for k, v in f[detector].items()
                if _text(v.attrs.get("NX_class", "")) == "NXdetector_module"
            ]
            self.missing = [(d, p) for d, p in _data_files(f, self.master) if not p.exists()]
            counts = self._frame_counts()
            shape = (
                f["entry/data/data"].shape if "entry/data/data" in f and not self.missing else ()
            )
            if not shape and "entry/data/data" in f and f["entry/data/data"].is_virtual:
                shape = f["entry/data/data"].shape
            panels = [_module_panel(f, m, shape) for m in modules] or [_flat_panel(f, detector)]
        except (KeyError, ValueError, TypeError) as exc:
            raise ReaderError(
                f"{master}: not an NXmx master with a detector and beam ({exc!r})"
            ) from None
        self.detector = Detector(tuple(panels), {"detector": tuple(p.name for p in panels)})
        self.events = [FrameId(str(self.master), e) for e in range(counts)]

    def _frame_counts(self) -> int:
        f = self.file
        if "entry/data/data" in f and f["entry/data/data"].is_virtual:
            return int(f["entry/data/data"].shape[0])
        spec = "entry/instrument/detector/detectorSpecific"
        if f"{spec}/nimages" in f:
            return int(f[f"{spec}/nimages"][()]) * int(f.get(f"{spec}/ntrigger", np.array(1))[()])
        raise ReaderError(f"{self.master}: no frame count (entry/data/data or nimages)")

    def frame(self, index: int) -> np.ndarray:
        if self.missing:
            dataset, path = self.missing[0]
            raise ReaderError(f"{self.master}: data file {path.name} ({dataset}) is absent")
        data = self.file["entry/data/data"] if "entry/data/data" in self.file else None
        if data is None:
            raise ReaderError(f"{self.master}: no entry/data/data to read frames from")
        image = data[index]
        return np.stack([image[p.ss0 : p.ss1, p.fs0 : p.fs1] for p in self.detector.panels])

    def wavelength(self, index: int) -> float:
        return self._wavelength

    def close(self) -> None:
        self.file.close()
