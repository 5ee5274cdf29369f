"""The run format: chunk files of raw frames plus one small index file per chunk.

A run is a directory ``<exp>/runs/r0001/`` holding

* chunk files ``r0001-c00.h5`` (CXI-style): ``/entry_1/data_1/data`` (n, rows, cols) raw ADU,
  ``uint16`` or ``int16``, contiguous; ``/entry_1/event/timestamp`` (n,) float64 seconds;
  ``/entry_1/event/photon_energy_eV`` (n,); optional per-event tags ``/entry_1/event/tags/<name>``
  (n,) numbers the DAQ records (laser on/off, pump-probe delay, ...);
  ``/entry_1/instrument_1/detector_1`` with the geometry as attributes (distance, pixel size,
  beam centre, panels as JSON);
* index files ``r0001-c00.idx.h5``: ``event``, ``offset`` (byte offset of the frame in the chunk
  file), ``timestamp`` and ``total_counts`` (sum of the raw frame, a fast per-event feature), with
  attributes naming the chunk, its byte size, frame shape and dtype;
* extracted events ``r0001-c00.e17.h5`` (only in a partial copy, :mod:`kernels.io.event_file`):
  one event of a chunk laid out as a chunk file of one frame (compressed), read in place of its
  absent chunk;
* ``CONCLUDED.json``, written atomically by the DAQ only after every file is closed: run number,
  name, files (name, bytes, adler32) and time (:mod:`kernels.io.marker`). A run without it is
  still being written.

Readers check everything they rely on and raise :class:`RunFormatError` naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from kernels.crystal.geometry import DetectorGeometry
from kernels.io.marker import MARKER, MarkerError, read_marker, run_order

DATA = "/entry_1/data_1/data"
TIMESTAMP = "/entry_1/event/timestamp"
ENERGY = "/entry_1/event/photon_energy_eV"
TAGS = "/entry_1/event/tags"
DETECTOR = "/entry_1/instrument_1/detector_1"
RAW_DTYPES = (np.dtype("uint16"), np.dtype("int16"))
HC_EV_ANGSTROM = 12398.4198


class RunFormatError(Exception):
    """A run's files are missing, truncated, inconsistent or of the wrong type."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


def write_chunk(
    path, frames: np.ndarray, timestamps, energies_ev, geometry: DetectorGeometry, tags=None
):
    """Write one chunk file and its index file next to it; returns the index path.

    tags : optional name -> per-event numbers (laser on/off, delay), kept in ``TAGS``.
    """
    path = Path(path)
    frames = np.asarray(frames)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(DATA, data=frames)  # contiguous: frames are addressable by offset
        f.create_dataset(TIMESTAMP, data=np.asarray(timestamps, dtype=np.float64))
        f.create_dataset(ENERGY, data=np.asarray(energies_ev, dtype=np.float64))
        for name, values in (tags or {}).items():
            f.create_dataset(f"{TAGS}/{name}", data=np.asarray(values, dtype=np.float64))
        det = f.require_group(DETECTOR)
        det.attrs["geometry"] = json.dumps(geometry.to_dict())
        det.attrs["distance"] = geometry.distance_mm / 1000.0
        det.attrs["x_pixel_size"] = det.attrs["y_pixel_size"] = geometry.pixel_size_mm / 1000.0
        base = ds.id.get_offset()
    frame_bytes = frames[0].nbytes if len(frames) else 0
    index_path = path.with_name(path.name[: -len(".h5")] + ".idx.h5")
    with h5py.File(index_path, "w") as f:
        f["event"] = np.arange(len(frames), dtype=np.int64)
        f["offset"] = base + frame_bytes * np.arange(len(frames), dtype=np.int64)
        f["timestamp"] = np.asarray(timestamps, dtype=np.float64)
        f["total_counts"] = frames.reshape(len(frames), -1).sum(axis=1, dtype=np.int64)
        f.attrs["chunk"] = path.name
        f.attrs["chunk_bytes"] = path.stat().st_size
        f.attrs["frame_shape"] = list(frames.shape[1:])
        f.attrs["dtype"] = str(frames.dtype)
    return index_path


@dataclass(frozen=True)
class Chunk:
    path: Path
    n_events: int
    timestamps: np.ndarray
    total_counts: np.ndarray


class Run:
    """An open, checked run. Work items are (chunk index, event index) pairs.

    Use :func:`open_run`. Frames are read lazily with :meth:`read_frame`; the chunk files stay
    open for the lifetime of the object (close it, or use it as a context manager).
    """

    def __init__(self, run_dir: Path, chunks: list[Chunk], geometry: DetectorGeometry, dtype):
        self.dir = run_dir
        self.name = run_dir.name
        self.chunks = chunks
        self.geometry = geometry
        self.dtype = dtype
        self._files: dict[Path, h5py.File] = {}

    @property
    def events(self) -> list[tuple[int, int]]:
        return [(c, e) for c, chunk in enumerate(self.chunks) for e in range(chunk.n_events)]

    @property
    def n_events(self) -> int:
        return sum(c.n_events for c in self.chunks)

    def _holder(self, chunk: int, event: int) -> tuple[h5py.File, int]:
        """The open file holding the event and its place there: its chunk, else (a partial
        copy without that chunk) the event's extracted file when it is there."""
        path = self.chunks[chunk].path
        extracted = path.with_name(event_file_name(path.name, event))
        if not path.exists() and extracted.exists():
            path, event = extracted, 0
        if path not in self._files:
            self._files[path] = h5py.File(path, "r")
        return self._files[path], event

    def read_frame(self, chunk: int, event: int) -> np.ndarray:
        """Raw ADU frame of one event."""
        try:
            f, place = self._holder(chunk, event)
            return f[DATA][place]
        except (OSError, IndexError, KeyError) as exc:
            raise RunFormatError(
                self.chunks[chunk].path, f"cannot read event {event}: {exc}"
            ) from exc

    def timestamp(self, chunk: int, event: int) -> float:
        """The event's DAQ timestamp (s), from the chunk's index file."""
        return float(self.chunks[chunk].timestamps[event])

    def photon_energy_ev(self, chunk: int, event: int) -> float:
        f, place = self._holder(chunk, event)
        return float(f[ENERGY][place])

    def wavelength(self, chunk: int, event: int) -> float:
        return HC_EV_ANGSTROM / self.photon_energy_ev(chunk, event)

    def chunk_files(self) -> list[str]:
        """Each chunk's file name, in chunk order (an image's source file)."""
        return [chunk.path.name for chunk in self.chunks]

    def event_tags(self) -> dict[str, list[np.ndarray]]:
        """Per tag the DAQ recorded, its values per chunk (NaN in a chunk without it); the
        chunks' tags were checked when they were opened (:func:`_check_tags`)."""
        found: list[dict[str, np.ndarray]] = []
        for chunk in self.chunks:
            with h5py.File(chunk.path, "r") as f:
                group = f.get(TAGS, {})
                found.append({name: group[name][()] for name in group})
        names = sorted({name for tags in found for name in tags})
        return {
            name: [
                np.asarray(tags.get(name, np.full(c.n_events, np.nan)), dtype=np.float64)
                for tags, c in zip(found, self.chunks)
            ]
            for name in names
        }

    def add_chunks(self, index_paths) -> int:
        """Append the chunks of ``index_paths`` (checked like :func:`open_run`'s); return how
        many. A run being acquired grows this way, chunk by chunk, keeping chunk numbers."""
        checked = [_check_chunk(Path(p)) for p in index_paths]
        for chunk, geometry, _ in checked:
            if geometry != self.geometry:
                raise RunFormatError(chunk.path, "chunk disagrees with the run's detector geometry")
        self.chunks.extend(chunk for chunk, _, _ in checked)
        return len(checked)

    def close(self):
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_tags(f: h5py.File, chunk_file: Path, n_events: int) -> None:
    """Every per-event tag of an open chunk file is one number per event."""
    for name, values in f.get(TAGS, {}).items():
        if (
            not isinstance(values, h5py.Dataset)
            or values.shape != (n_events,)
            or not np.issubdtype(values.dtype, np.number)
        ):
            raise RunFormatError(
                chunk_file, f"tag {TAGS}/{name} is not one number per event ({n_events} events)"
            )


def _read_index(index_path: Path) -> tuple[Chunk, int, tuple[int, ...]]:
    """An index file's chunk (as the index describes it), the chunk's bytes and frame shape."""
    try:
        with h5py.File(index_path, "r") as f:
            events = f["event"][()]
            chunk = Chunk(
                index_path.with_name(str(f.attrs["chunk"])),
                len(events),
                f["timestamp"][()],
                f["total_counts"][()],
            )
            return chunk, int(f.attrs["chunk_bytes"]), tuple(int(v) for v in f.attrs["frame_shape"])
    except (OSError, KeyError) as exc:
        raise RunFormatError(index_path, f"unreadable index file: {exc}") from None


def _check_chunk(index_path: Path) -> tuple[Chunk, DetectorGeometry, np.dtype]:
    """Read an index file and verify its chunk file against it."""
    described, chunk_bytes, shape = _read_index(index_path)
    chunk_file, timestamps = described.path, described.timestamps
    events, total = range(described.n_events), described.total_counts
    if not chunk_file.exists():
        raise RunFormatError(chunk_file, "chunk file missing (listed by its index file)")
    size = chunk_file.stat().st_size
    if size < chunk_bytes:
        raise RunFormatError(chunk_file, f"truncated: {size} bytes, index says {chunk_bytes}")
    try:
        with h5py.File(chunk_file, "r") as f:
            data = f[DATA]
            geometry = DetectorGeometry.from_dict(json.loads(f[DETECTOR].attrs["geometry"]))
            chunk_ts = f[TIMESTAMP][()]
            dtype, n, frame_shape = data.dtype, data.shape[0], tuple(data.shape[1:])
            _check_tags(f, chunk_file, n)
    except (OSError, KeyError, ValueError) as exc:
        raise RunFormatError(chunk_file, f"not a valid chunk file: {exc}") from None
    if dtype not in RAW_DTYPES:
        raise RunFormatError(chunk_file, f"raw frames must be uint16 or int16, found {dtype}")
    if n != len(events) or frame_shape != shape or not np.array_equal(chunk_ts, timestamps):
        raise RunFormatError(
            chunk_file,
            f"does not match its index {index_path.name}: {n} events of {frame_shape} vs "
            f"{len(events)} of {shape}" + ("" if n != len(events) else ", timestamps differ"),
        )
    return Chunk(chunk_file, len(events), timestamps, total), geometry, dtype


def event_file_name(chunk_name: str, event: int) -> str:
    """The name of one extracted event of a chunk: ``r0001-c02.h5``, 17 -> ``r0001-c02.e17.h5``."""
    return f"{chunk_name[: -len('.h5')]}.e{int(event)}.h5"


def file_geometry(path: Path) -> tuple[DetectorGeometry, np.dtype]:
    """The detector geometry and raw dtype a chunk (or extracted event) file records."""
    try:
        with h5py.File(path, "r") as f:
            geometry = DetectorGeometry.from_dict(json.loads(f[DETECTOR].attrs["geometry"]))
            return geometry, f[DATA].dtype
    except (OSError, KeyError, ValueError) as exc:
        raise RunFormatError(path, f"not a valid chunk or event file: {exc}") from None


def index_files(run_dir: Path) -> list[Path]:
    """The run's index files in chunk order (``c99`` before ``c100``, as :func:`run_order`)."""
    return sorted(run_dir.glob("*.idx.h5"), key=lambda p: run_order(p.name))


def chunk_names(run_dir) -> list[str]:
    """The chunk file names of a run, in chunk order, as its index files name them."""
    return [_read_index(p)[0].path.name for p in index_files(Path(run_dir))]


def chunk_events(run_dir) -> list[int]:
    """The number of events of each chunk of a run, as its index files say."""
    return [_read_index(p)[0].n_events for p in index_files(Path(run_dir))]


def open_run(run_dir, partial: bool = False) -> Run:
    """Open a run directory and check it.

    Every chunk listed by the run's marker (when present) or found next to an index file must
    exist, be complete and agree with its index file in event count, frame shape and
    timestamps, with raw frames of type uint16 or int16. ``partial``: chunk files may be
    absent (a copy fetched chunk by chunk); those there are checked, the others are known
    from their index files only and readable once their file arrives.

    Raises
    ------
    RunFormatError
        naming the offending file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFormatError(run_dir, "run directory does not exist")
    indexes = index_files(run_dir)
    described = [_read_index(p)[0] for p in indexes] if partial else []
    if (run_dir / MARKER).exists():
        try:
            listed = {f.name for f in read_marker(run_dir).files}
        except MarkerError as exc:
            raise RunFormatError(run_dir / MARKER, f"unreadable marker: {exc.problem}") from None
        for name in sorted(listed - {c.path.name for c in described}):
            if not (run_dir / name).exists():
                raise RunFormatError(run_dir / name, "file listed in the run marker is missing")
    if not partial:
        return open_chunks(run_dir, indexes)
    # the geometry and dtype come from the chunks there (else an extracted event's file); the
    # others keep their place
    present = [p for p, c in zip(indexes, described) if c.path.exists()]
    extracted = sorted(run_dir.glob("*-c*.e*.h5"))
    if present or not extracted:
        run = open_chunks(run_dir, present)
    else:
        run = Run(run_dir, [], *file_geometry(extracted[0]))
    checked = {c.path: c for c in run.chunks}
    run.chunks = [checked.get(c.path, c) for c in described]
    return run


def open_chunks(run_dir: Path, indexes: list[Path]) -> Run:
    """A run of the chunks of these index files, in this order, each checked."""
    if not indexes:
        raise RunFormatError(run_dir, "no index files (*.idx.h5): not a run directory")
    checked = [_check_chunk(p) for p in indexes]
    geometries = {g for _, g, _ in checked}
    if len(geometries) != 1:
        raise RunFormatError(run_dir, "chunks disagree on detector geometry")
    return Run(run_dir, [c for c, _, _ in checked], geometries.pop(), checked[0][2])
