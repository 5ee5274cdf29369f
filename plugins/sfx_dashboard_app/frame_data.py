"""What the frame viewer shows of one event: its pixels laid out, its spots, its predictions, and
where the neighbouring hits are.

Spots are found on the fly with the run's trial (the stages store only their count); predicted
reflections are the ones stored in the run's published ``integrated.h5``
(``<exp>/results/<trial>/<run>/``), i.e. exactly what was integrated. Opened runs and their
layouts are kept in a small LRU (planning a 4 Mpix detector once, not per request).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from kernels.io.reflections import INTEGRATED_FILE, ReflectionFileError, read_integrated
from kernels.stages.pipeline import ProcessingParams
from operators.pipeline.job_script import check_name

from .frame_source import FrameNotFound, open_source
from .frames import layout

CACHED_RUNS = 3
RESULTS_FOLDER = "results"


class OpenRuns:
    """A bounded LRU of opened run folders (source + raster layout) per spot-finder setting."""

    def __init__(self, size: int = CACHED_RUNS):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path, params: ProcessingParams, partial: bool = False):
        # the folder's inode too: a run the center cache dropped and fetched again is a new
        # folder at the same path, not the old (deleted) files still open here
        spotfinder = json.dumps(params.to_dict()["spotfinder"], sort_keys=True)
        key = (str(folder), folder.stat().st_ino, spotfinder)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            source = open_source(folder, params.spotfinder, partial)
            if not source.events:
                source.close()
                raise FrameNotFound(f"run {folder.name}: no events")
            entry = (source, layout(source.detector, source.block_shape()[1:]))
            self._entries[key] = entry
            while len(self._entries) > self.size:
                old, _ = self._entries.popitem(last=False)[1]
                old.close()
            return entry


def trial_params(trial: dict) -> ProcessingParams:
    """The trial's processing parameters, or :class:`FrameNotFound` naming the trial."""
    try:
        return ProcessingParams.from_dict(trial["params"])
    except ValueError as exc:
        raise FrameNotFound(
            f"trial {trial['name']!r} has parameters the kernels refuse: {exc}"
        ) from None


def hit_neighbours(images: list[dict], chunk: int, event: int) -> dict:
    """The previous and next hit around (chunk, event) in (chunk, event) order, and its row."""
    here = (chunk, event)
    hits = [(r["chunk"], r["event"]) for r in images if r["hit"]]
    before = [h for h in hits if h < here]
    after = [h for h in hits if h > here]
    row = next((r for r in images if (r["chunk"], r["event"]) == here), None)
    return {
        "previous_hit": list(before[-1]) if before else None,
        "next_hit": list(after[0]) if after else None,
        "row": row,
    }


def first_hit(images: list[dict], events: list) -> tuple[int, int]:
    """Where the viewer opens without an event: the first hit, else the first event."""
    hits = [(r["chunk"], r["event"]) for r in images if r["hit"]]
    if hits:
        return hits[0]
    if not events:
        raise FrameNotFound("the run has no events")
    return tuple(events[0])


def wanted_event(images: list[dict], chunk: int | None, event: int | None) -> tuple[int, int]:
    """The event a viewer request needs: the asked one, else the first hit, else the first."""
    if chunk is not None or event is not None:
        return chunk or 0, event or 0
    return next(((r["chunk"], r["event"]) for r in images if r["hit"]), (0, 0))


def results_file(exp_dir: str | Path, trial: str, run: str) -> Path | None:
    """``<exp>/results/<trial>/<run>/integrated.h5`` if the names are safe and it is there."""
    try:
        check_name("trial", trial)
    except ValueError:
        return None  # a trial name that cannot be a folder has no published results here
    root = (Path(exp_dir) / RESULTS_FOLDER).resolve()
    path = (root / trial / run / INTEGRATED_FILE).resolve()
    return path if path.is_file() and path.parents[2] == root else None


def stored_predictions(path: Path | None, chunk: int, event: int) -> np.ndarray | None:
    """Predicted (col, row) of the image's integrated reflections (flat-frame pixels, centres at
    integers); None when the run has no published file or the image was not integrated."""
    if path is None:
        return None
    try:
        _, images, refl = read_integrated(path)
    except ReflectionFileError:
        return None
    match = np.flatnonzero((images["chunk"] == chunk) & (images["event"] == event))
    if not match.size:
        return None
    on = refl["image"] == match[0]
    return np.stack([refl["col"][on], refl["row"][on]], axis=1)
