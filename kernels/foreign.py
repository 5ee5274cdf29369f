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
    if reader.raw_statement:
        raise ReaderError(f"{reader.events[0].file}: {reader.raw_statement}; nothing processed")
    image = PanelImage(reader.detector)
    calibration = panel_calibration(image, adu_per_photon, reader.good_pixels())
    processor = Processor(calibration, image, params)
    files = {name: i for i, name in enumerate(dict.fromkeys(e.file for e in reader.events))}
    results = []
    for i, event in enumerate(reader.events):
        frame = reader.frame(i)
        if frame.shape != (image.n, *image.panel_shape):
            raise ReaderError(
                f"{event.file}: frame {event.event} of shape {frame.shape} does not fit the "
                f"geometry's {(image.n, *image.panel_shape)}"
            )
        results.append(
            processor.process(frame, files[event.file], event.event, 0.0, reader.wavelength(i))
        )
    return results, processor


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
    with open_frames(paths, geometry, tag_fields) as reader:
        tags = reader.event_tags()  # before the frames: a bad tag field stops the run at once
        results, _ = process_frames(reader, params, adu_per_photon)
    name = Path(list(paths)[0]).name
    wall = time.perf_counter() - started
    return write_run_outputs(out, results, wall, name, trial, params, tags)
