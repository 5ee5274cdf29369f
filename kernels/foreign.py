"""Processing a foreign run (CBF, CXI/HDF5 + ``.geom``, NeXus, EuXFEL): frames from a reader,
the multi-panel chain on its detector.

The reader gives each frame's panels stacked; :class:`~kernels.crystal.panel_image.PanelImage`
lays them out as one image with masked gaps, and the per-image chain of
:class:`~kernels.stages.pipeline.Processor` runs on it unchanged. Facility frames come
dark-subtracted (pedestal 0); the gain turns their ADU into photons.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from kernels.crystal.panel_image import PanelImage
from kernels.io.geom import GeomFile
from kernels.io.readers.base import FrameReader, ReaderError
from kernels.io.readers.select import open_frames
from kernels.outputs import write_run_outputs
from kernels.process import process_events
from kernels.stages.calibration import Calibration
from kernels.stages.pipeline import ImageResult, ProcessingParams, Processor


def panel_calibration(
    image: PanelImage, adu_per_photon: float, good: np.ndarray | None = None
) -> Calibration:
    """Constants of dark-subtracted frames: pedestal 0, one gain, the `good` pixels of the
    panels (panels, rows, cols; default all) unmasked.

    Raises
    ------
    ValueError
        A gain that is not positive.
    """
    if not adu_per_photon > 0:
        raise ValueError(f"the gain must be positive ADU per photon, got {adu_per_photon!r}")
    shape = image.shape
    return Calibration(
        np.zeros(shape, np.float32),
        np.full(shape, adu_per_photon, np.float32),
        image.mask(good),
    )


class ForeignRun:
    """A run of facility files as the MPI driver sees a run: work items (file number in the
    run's order, frame in its file) from the files' own frame counts, frames read on demand.

    Parameters
    ----------
    reader : FrameReader
        The open reader of the run's files (closed by :meth:`close`).
    name : str
        The run's name in the results (the folder's or first file's name).
    adu_per_photon : float
        Gain of the dark-subtracted frames.

    Raises
    ------
    ReaderError
        Raw frames the chain cannot calibrate (the reader says why).
    """

    def __init__(self, reader: FrameReader, name: str, adu_per_photon: float = 1.0):
        if reader.raw_statement:
            raise ReaderError(f"{reader.events[0].file}: {reader.raw_statement}; nothing processed")
        self.reader, self.name, self.adu_per_photon = reader, name, adu_per_photon
        self.chunks = list(dict.fromkeys(e.file for e in reader.events))  # one per file
        number = {path: i for i, path in enumerate(self.chunks)}
        self._index = {(number[e.file], e.event): i for i, e in enumerate(reader.events)}
        self.image = PanelImage(reader.detector)

    @property
    def events(self) -> list[tuple[int, int]]:
        return list(self._index)

    @property
    def n_events(self) -> int:
        return len(self._index)

    def read_frame(self, chunk: int, event: int) -> np.ndarray:
        """The stacked (panels, rows, cols) frame of one work item.

        Raises
        ------
        ReaderError
            A frame whose shape does not fit the detector, naming its file and event.
        """
        frame = self.reader.frame(self._index[chunk, event])
        if frame.shape != (self.image.n, *self.image.panel_shape):
            raise ReaderError(
                f"{self.chunks[chunk]}: frame {event} of shape {frame.shape} does not fit the "
                f"geometry's {(self.image.n, *self.image.panel_shape)}"
            )
        return frame

    def wavelength(self, chunk: int, event: int) -> float:
        return self.reader.wavelength(self._index[chunk, event])

    def timestamp(self, chunk: int, event: int) -> float:
        """Facility files carry no DAQ timestamp the chain reads: 0."""
        return 0.0

    def chunk_files(self) -> list[str]:
        """Each file's name, in the run's order (an image's source file)."""
        return [Path(path).name for path in self.chunks]  # the run's folder holds them all

    def event_tags(self) -> dict[str, list[np.ndarray]]:
        """The per-event tags the reader was told where to find, per file (``Run.event_tags``)."""
        return self.reader.event_tags()

    def processor(self, params: ProcessingParams) -> Processor:
        """The chain on this run's detector, with its good pixels and gain."""
        calibration = panel_calibration(self.image, self.adu_per_photon, self.reader.good_pixels())
        return Processor(calibration, self.image, params)

    def close(self) -> None:
        self.reader.close()


def open_foreign_run(
    paths,
    geometry: GeomFile | str | None = None,
    adu_per_photon: float = 1.0,
    tag_fields: dict[str, str] | None = None,
):
    """The :class:`ForeignRun` of `paths` (a folder or files), named after the first, with its
    events' tags read from `tag_fields` (HDF5/CXI files).

    Raises
    ------
    ReaderError, GeometryFileError
        Files that cannot be read, or a geometry that is broken or does not fit them.
    """
    paths = list(paths)
    reader = open_frames(paths, geometry, tag_fields)
    try:
        return ForeignRun(reader, Path(paths[0]).name, adu_per_photon)
    except ReaderError:
        reader.close()
        raise


def process_frames(
    reader: FrameReader, params: ProcessingParams, adu_per_photon: float = 1.0
) -> tuple[list[ImageResult], Processor]:
    """Every frame of the reader through the chain: results (chunk = file number in the run's
    order, event = frame in its file) and the processor that made them.

    Raises
    ------
    ReaderError
        Raw frames (the reader says why), or a frame whose shape does not fit the detector,
        naming its file and event.
    """
    run = ForeignRun(reader, "", adu_per_photon)
    processor = run.processor(params)
    return process_events(run, processor), processor


def process_foreign_run(
    paths,
    out_dir,
    geometry: GeomFile | str | None = None,
    params: ProcessingParams = ProcessingParams(),
    adu_per_photon: float = 1.0,
    trial: str = "default",
    tag_fields: dict[str, str] | None = None,
) -> dict:
    """``python -m kernels process --run DIR --geometry FILE.geom [--event-tag NAME=FIELD]``:
    images.csv, summary.json and integrated.h5 (with the events' tags read from `tag_fields`)
    of a foreign run, as for the chunk format."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    paths = list(paths)
    with open_frames(paths, geometry, tag_fields) as reader:
        tags = reader.event_tags()  # before the frames: a bad tag field stops the run at once
        run = ForeignRun(reader, Path(paths[0]).name, adu_per_photon)
        results = process_events(run, run.processor(params))
    wall = time.perf_counter() - started
    return write_run_outputs(out, results, wall, run.name, trial, params, tags, run.chunk_files())
