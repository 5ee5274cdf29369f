"""One rank's work: process items of a run, cache the full results, return the lean rows."""

from __future__ import annotations

import socket
import time

from kernels.driver.parts import ResultCache
from kernels.foreign import ForeignRun
from kernels.funnel import FUNNEL
from kernels.io.live_run import extend_run
from kernels.io.runformat import Run
from kernels.resultsdb.logger import ImageRow
from kernels.stages.pipeline import ImageResult, Processor


def image_row(result: ImageResult, rank: int, host: str, t_start: float, timings: dict) -> ImageRow:
    """The lean DB row of one processed image."""
    return ImageRow(
        chunk=result.chunk,
        event=result.event,
        hit=result.hit,
        n_spots=result.n_spots,
        indexed=result.status in FUNNEL[1:],
        n_refined=result.n_refined,
        n_integrated=result.n_integrated,
        status=result.status,
        reason=result.reason,
        rank=rank,
        host=host,
        t_start=t_start,
        timings=timings,
        t_acquired=result.timestamp,
        n_saturated=result.n_saturated,
        d_est=result.d_est,
        cell=tuple(result.cell) if result.cell is not None else (),
    )


class Worker:
    """Processes work items of one run on one rank and caches the results."""

    def __init__(self, run: Run | ForeignRun, processor: Processor, cache: ResultCache, rank: int):
        self.run, self.processor, self.cache, self.rank = run, processor, cache, rank
        self.host = socket.gethostname()

    def process(self, item: tuple[int, int]) -> tuple[ImageRow, ImageResult]:
        """Process one item; its lean row and full result (the result is cached, too)."""
        chunk, event = item
        if isinstance(self.run, Run) and chunk >= len(self.run.chunks):
            extend_run(self.run)  # a live run: rank 0 has seen this chunk's marker
        t_start = time.time()
        t0 = time.perf_counter()
        raw = self.run.read_frame(chunk, event)
        wavelength = self.run.wavelength(chunk, event)
        t_read = time.perf_counter() - t0
        result = self.processor.process(
            raw, chunk, event, self.run.timestamp(chunk, event), wavelength=wavelength
        )
        row = image_row(result, self.rank, self.host, t_start, {"read": t_read, **result.timings})
        self.cache.append(row, result)
        return row, result
