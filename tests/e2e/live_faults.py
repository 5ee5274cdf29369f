"""Helpers of the whole-stack live-run fault tests (in ``test_beamtime.py``, on its stack).

A live run's chunks are closed when the test says (``SteppedDaq``), so each fault lands between
the chunk events it is meant for whatever the machine's speed; what the tests check afterwards
is that every image was processed exactly once: the image rows in the results DB and
``images.csv``.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
import time

from facility.beamline.live import fsync_files
from facility.beamline.replay import lay_out_chunk
from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.io.chunk_marker import chunk_marker_name, write_chunk_marker, write_started
from kernels.io.marker import run_name, write_marker
from kernels.resultsdb import ResultsDB

CHUNK = 4  # images per chunk: several chunk events in a run of a few seconds


class SteppedDaq:
    """A live run that the test acquires chunk by chunk, when it says: the real DAQ's files and
    markers (``facility.beamline.replay``), from ``RENDERED`` chunks rendered once."""

    RENDERED = 2

    def __init__(self, bt, number: int):
        render = bt.exp_dir.parent / f"rendered-{number}"  # outside the watched runs folder
        params = dataclasses.replace(SimulationParams(), chunk_size=CHUNK)
        simulate_experiment(render, 1, self.RENDERED * CHUNK, seed=5, params=params, workers=1,
                            log=lambda *_: None)  # fmt: skip
        self.source, self.number = render / "runs" / run_name(1), number
        self.run_dir = bt.exp_dir / "runs" / run_name(number)
        self.run_dir.mkdir(parents=True)
        shutil.copyfile(self.source / "calibration.h5", self.run_dir / "calibration.h5")
        write_started(self.run_dir, number, 120.0, files=["calibration.h5"])
        self.closed = 0

    def close(self, chunks: int) -> None:
        """Close the next ``chunks`` chunks: files fsynced, then each one's marker."""
        for chunk in range(self.closed, self.closed + chunks):
            files, events = lay_out_chunk(self.source, self.run_dir, self.number, chunk)
            fsync_files(files)
            write_chunk_marker(self.run_dir, self.number, chunk, events, files)
        self.closed += chunks

    def conclude(self) -> int:
        """Write the run marker; the run's image count."""
        write_marker(self.run_dir, self.number)
        return self.closed * CHUNK


def wait_for(check, what: str, timeout: float = 180.0):
    """Poll ``check()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"never saw {what} within {timeout:g} s")


def chunks_at_center(bt, number: int) -> int:
    """How many leading chunks of run ``number`` have their marker at the center."""
    run_dir = bt.center.root / bt.beamtime.hpc_dir.lstrip("/") / "runs" / run_name(number)
    chunk = 0
    while (run_dir / chunk_marker_name(run_name(number), chunk)).exists():
        chunk += 1
    return chunk


def run_ids(db, bt, number: int) -> tuple[int | None, int]:
    """(run id or None while it is not registered, trial id of default) of run ``number``."""
    trial_id = db.get_trial("default")["id"]
    runs = {r["run"]: r["run_id"] for r in db.run_table(bt.beamtime.experiment, trial_id)}
    return runs.get(run_name(number)), trial_id


def image_rows(bt, number: int) -> list[tuple[int, int]]:
    """(chunk, event) of every image row of run ``number`` (trial default) in the results DB."""
    with ResultsDB(bt.beamtime.results_db) as db:
        run_id, trial_id = run_ids(db, bt, number)
        rows = db.images(run_id, trial_id) if run_id is not None else []
    return [(r["chunk"], r["event"]) for r in rows]


def pipeline_state(bt, number: int) -> dict:
    """The stored pipeline state of run ``number``, trial default (state, detail, total, ...)."""
    with ResultsDB(bt.beamtime.results_db) as db:
        run_id, trial_id = run_ids(db, bt, number)
        return db.pipeline_states(trial_id)[run_id]


def assert_each_image_once(bt, number: int, images: int) -> None:
    """Every image of the run in the DB, in ``images.csv`` and the summary, each exactly once."""
    expected = {(c, e) for c in range(images // CHUNK) for e in range(CHUNK)}
    rows = image_rows(bt, number)
    assert sorted(rows) == sorted(expected), f"DB rows {sorted(rows)}"
    results = bt.exp_dir / "results" / "default" / run_name(number)
    with open(results / "images.csv", newline="") as f:
        listed = [(int(r["chunk"]), int(r["event"])) for r in csv.DictReader(f)]
    assert sorted(listed) == sorted(expected), f"images.csv {sorted(listed)}"
