"""Choose the reader for a run's files: ``open_frames(paths, geometry)``."""

from __future__ import annotations

from pathlib import Path

import h5py

from kernels.io.geom import GeomFile
from kernels.io.readers.base import FrameReader, ReaderError
from kernels.io.readers.cbf import CbfReader
from kernels.io.readers.hdf5_geom import Hdf5GeomReader
from kernels.io.readers.nexus import NexusReader

XTC2_SUFFIX = ".xtc2"  # LCLS-II, read through psana (the xtc2 extra)
HDF5_SUFFIXES = {".h5", ".hdf5", ".cxi", ".nxs", ".json"}  # EuXFEL runs hold a JSON map


def _is_nexus_master(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "entry/instrument/detector" in f and "entry/data" in f
    except OSError:
        return False


def run_files(paths) -> list[Path]:
    """The files of `paths`, a directory's files taken in name order."""
    out: list[Path] = []
    for p in (Path(p) for p in paths):
        out += sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
    missing = [str(p) for p in out if not p.exists()]
    if missing:
        raise ReaderError(f"{missing[0]}: no such file")
    return out


def open_frames(
    paths, geometry: GeomFile | str | None = None, tag_fields: dict[str, str] | None = None
) -> FrameReader:
    """A reader for the run's files, chosen by what they are (`tag_fields`: per-event tags'
    fields, read from HDF5/CXI files only).

    CBF files -> :class:`CbfReader`; LCLS-II ``.xtc2`` files with a geometry -> ``Xtc2Reader``
    (psana); one NeXus master (its data files beside it) ->
    :class:`NexusReader`; HDF5/CXI files with a CrystFEL `geometry` -> :class:`Hdf5GeomReader`;
    a EuXFEL run folder (RAW-/CORR- files) with a geometry -> ``EuxfelReader``.

    Raises
    ------
    ReaderError
        No files, files of mixed or unknown kinds, HDF5 frames without a geometry, or tag
        fields for files other than HDF5/CXI ones.
    """
    reader = _open(paths, geometry, tag_fields)
    if tag_fields and not isinstance(reader, Hdf5GeomReader):
        reader.close()
        raise ReaderError(
            f"{', '.join(map(str, paths))}: per-event tags are read only from HDF5/CXI files "
            f"with a geometry, not by {type(reader).__name__}"
        )
    return reader


def _open(paths, geometry: GeomFile | str | None, tag_fields) -> FrameReader:
    files = run_files(paths)
    if not files:
        raise ReaderError(f"{', '.join(map(str, paths))}: no files to read")
    suffixes = {f.suffix.lower() for f in files}
    if suffixes == {".cbf"}:
        return CbfReader([str(f) for f in files])
    if suffixes == {XTC2_SUFFIX}:
        if geometry is None:
            raise ReaderError(
                f"{files[0].parent}: XTC2 files need a CrystFEL geometry (--geometry) over "
                "psana's raw array: the beamline's geometry is in SLAC's calibration database"
            )
        from kernels.io.readers.xtc2 import Xtc2Reader  # psana only for XTC2 runs

        return Xtc2Reader([str(f) for f in files], geometry)
    if not suffixes <= HDF5_SUFFIXES:
        raise ReaderError(f"{files[0].parent}: files of kinds {sorted(suffixes)} have no reader")
    h5_names = [f.name for f in files if f.suffix == ".h5"]
    if h5_names and all(n.startswith(("RAW-", "CORR-")) for n in h5_names):
        if geometry is None:
            raise ReaderError(f"{files[0].parent}: a EuXFEL run needs a CrystFEL geometry")
        from kernels.io.readers.euxfel import EuxfelReader  # EXtra-data only for EuXFEL runs

        return EuxfelReader(files[0].parent, geometry)
    masters = [f for f in files if _is_nexus_master(f)]
    if masters and geometry is None:
        if len(masters) > 1:
            raise ReaderError(f"{masters[0].parent}: {len(masters)} NeXus masters; give one")
        return NexusReader(masters[0])
    if geometry is None:
        raise ReaderError(f"{files[0]}: HDF5 frames need a CrystFEL geometry (--geometry)")
    return Hdf5GeomReader([str(f) for f in files], geometry, tag_fields)
