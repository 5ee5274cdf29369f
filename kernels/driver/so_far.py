"""Rank 0's run-so-far merge of a live job: each integrated image is added once, as its worker
reports it, and the statistics are published every N merged images or M seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from kernels.io.atomic import write_json
from kernels.merging.running import RunningMerge
from kernels.stages.pipeline import ImageResult

RUN_SO_FAR_FILE = "run_so_far.json"
log = logging.getLogger(__name__)
Contribution = tuple  # (chunk, event, hkl, intensity, sigma, partiality) of an integrated image
Sink = Callable[[dict, bool], None]


def contribution(result: ImageResult) -> Contribution | None:
    """What an image adds to the run-so-far merge: its reflections, if it was integrated."""
    refl = result.reflections
    if result.status != "integrated" or refl is None:
        return None
    return (result.chunk, result.event, refl.hkl, refl.intensity, refl.sigma, refl.partiality)


class RunSoFar:
    """A :class:`RunningMerge` fed image by image, published on a cadence to ``sinks``.

    Parameters
    ----------
    merge : RunningMerge
        The running sums (empty, or rebuilt from earlier sessions' parts).
    every_images, every_seconds : int, float
        Publish once this many images were added since the last publication, or this long
        after it if any was.
    sinks : list of callables (statistics, final) -> None
        Where a publication goes (``run_so_far.json``, the results DB).
    """

    def __init__(
        self,
        merge: RunningMerge,
        every_images: int,
        every_seconds: float,
        sinks: list[Sink],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.merge, self.every_images, self.every_seconds = merge, every_images, every_seconds
        self.sinks, self.clock = sinks, clock
        self.pending = 0  # images added since the last publication
        self._last = clock()

    def add(self, contributions) -> None:
        for chunk, event, hkl, intensity, sigma, partiality in contributions:
            self.merge.add(chunk, event, hkl, intensity, sigma, partiality)
            self.pending += 1

    def tick(self) -> None:
        """Publish if enough images or time have gone by since the last publication."""
        due = self.pending >= self.every_images or (
            self.pending and self.clock() - self._last >= self.every_seconds
        )
        if due:
            self.publish(final=False)

    def publish(self, final: bool) -> dict:
        """Hand the current statistics (with ``at``, UNIX seconds, and ``final``) to the sinks."""
        stats = {**self.merge.statistics(), "at": time.time(), "final": final}
        for sink in self.sinks:
            try:
                sink(stats, final)
            except Exception as exc:  # a quick look must never stop the processing
                log.warning("run-so-far merge not published: %s", exc)
        self.pending, self._last = 0, self.clock()
        return stats


def file_sink(out: Path) -> Sink:
    """Publish to ``<out>/run_so_far.json`` (atomically)."""

    def write(stats: dict, final: bool) -> None:
        write_json(Path(out) / RUN_SO_FAR_FILE, stats)

    return write


def db_sink(url: str, run_id: int, trial_id: int) -> Sink:
    """Publish to the results DB's ``run_so_far`` row, on a connection of its own (the
    logger's connections belong to its writer threads while the job runs)."""
    from kernels.resultsdb import ResultsDB

    db = ResultsDB(url)

    def record(stats: dict, final: bool) -> None:
        db.record_run_so_far(run_id, trial_id, stats, final, stats["at"])
        if final:
            db.close()

    return record


def start_run_so_far(merge: RunningMerge, earlier, every_images, every_seconds, sinks) -> RunSoFar:
    """A session's run-so-far merge, holding the images of earlier sessions' ``(row, result)``
    records (a resubmitted job reads them once, from the parts, as it starts)."""
    so_far = RunSoFar(merge, every_images, every_seconds, sinks)
    so_far.add(c for _, result in earlier if (c := contribution(result)) is not None)
    so_far.pending = 0
    return so_far
