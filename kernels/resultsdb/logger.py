"""Batched, idempotent logging of per-image results into the results DB.

One :class:`ImageLogger` owns one or a few DB connections and serves many ranks: rows are
encoded when they are added, buffered, and written by background threads (one per
connection, each taking the next batch when free) as large multi-row INSERTs, one
transaction per batch. The natural key (run, trial, chunk, event) makes a replayed batch a
no-op, so after a dropped connection or a DB restart a writer simply reconnects and replays
(see :meth:`ResultsDB.transaction`): nothing lost, nothing twice, whichever writer it was.
The buffer is bounded: while the DB is away, :meth:`ImageLogger.add` blocks once
``max_rows`` rows wait, which throttles the producers instead of exhausting memory.
"""

from __future__ import annotations

import re
import threading
import time
from functools import lru_cache
from itertools import islice
from typing import NamedTuple

from .db import ResultsDB
from .images import IMAGE_KINDS


class ImageRow(NamedTuple):
    """The fate of one image as logged (lean: no arrays)."""

    chunk: int
    event: int
    hit: bool
    n_spots: int
    indexed: bool
    n_refined: int
    n_integrated: int
    status: str
    reason: str
    rank: int
    host: str
    t_start: float  # UNIX seconds when the first stage started
    timings: dict  # stage -> seconds, in the order the stages ran
    t_acquired: float = 0.0  # the frame's DAQ timestamp (UNIX seconds)
    n_saturated: int = 0  # good pixels at the ADC's full scale
    d_est: float = 0.0  # estimated resolution (A) from the spots; 0: none
    cell: tuple = ()  # refined (a, b, c, alpha, beta, gamma); empty: not refined


NO_CELL = (0.0,) * 6  # stored for an image without a refined cell
STAGE_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


@lru_cache(maxsize=256)
def _timings_template(stages: tuple) -> str:
    for stage in stages:
        if not STAGE_NAME.fullmatch(str(stage)):
            raise ValueError(f"stage name {stage!r} must match {STAGE_NAME.pattern}")
    return "{" + ",".join(f'"{stage}":%.6g' for stage in stages) + "}"


def timings_json(timings: dict) -> str:
    """Stage timings as compact JSON, stages in run order, six significant digits (1 µs for stages under 1 s).

    Stage names are plain identifiers, so the text never holds a quote or backslash and
    needs no SQL escaping (column kind ``j``).
    """
    return _timings_template(tuple(timings)) % tuple(timings.values())


class LoggerFailedError(RuntimeError):
    """The DB stayed unreachable longer than the retry window; unwritten rows are kept."""


class ImageRowEncoder:
    """Turns ImageRows into what one DB's bulk insert wants; needs no connection, so the
    ranks that produce rows can encode them and spare the logger the work.

    Parameters
    ----------
    dialect : Dialect
        ``ResultsDB(url).dialect`` or ``dialect_for(parse_db_url(url))``.
    run_id, trial_id : int
        Resolved once by the logger's owner.
    """

    def __init__(self, dialect, run_id: int, trial_id: int):
        self.run_id, self.trial_id = int(run_id), int(trial_id)
        self._encode = dialect.row_encoder(IMAGE_KINDS)

    def __call__(self, row: ImageRow):
        """The row encoded (types normalised, strings bounded, timings as JSON)."""
        return self._encode(
            (
                self.run_id,
                self.trial_id,
                row.chunk,
                row.event,
                row.hit,
                row.n_spots,
                row.indexed,
                row.n_refined,
                row.n_integrated,
                str(row.status)[:64],
                str(row.reason)[:255],
                row.rank,
                str(row.host)[:64],
                row.t_start,
                timings_json(row.timings),
                row.t_acquired,
                row.n_saturated,
                row.d_est,
                *(tuple(row.cell) or NO_CELL),
            )
        )


class ImageLogger:
    """Buffer image rows of one run and trial and write them in big idempotent batches.

    Parameters
    ----------
    db : ResultsDB
        Owned by the logger from now on (its connection is used by the first writer thread).
    run_id, trial_id : int
        Resolved once, so no row needs a lookup.
    batch_rows : int
        Rows per transaction.
    max_rows : int
        Bound on buffered plus in-flight rows; :meth:`add` blocks above it. All writers can
        be busy at once only if it is at least ``connections * batch_rows``.
    flush_seconds : float
        Rows never wait longer than this for a full batch, so live progress stays live.
    connections : int
        Writer threads, each with its own connection, sharing the one buffer: a batch goes
        to whichever writer is free. The server runs one thread per connection, so k
        connections use up to k of its cores. Forced to 1 for SQLite, which has one writer
        per file: more connections would only queue on its lock.
    """

    def __init__(
        self,
        db: ResultsDB,
        run_id: int,
        trial_id: int,
        batch_rows: int = 50_000,
        max_rows: int = 500_000,
        flush_seconds: float = 1.0,
        connections: int = 1,
    ):
        if max_rows < batch_rows:
            raise ValueError(f"max_rows ({max_rows}) must be at least batch_rows ({batch_rows})")
        if connections < 1:
            raise ValueError(f"connections ({connections}) must be at least 1")
        self.db = db
        self.encode = ImageRowEncoder(db.dialect, run_id, trial_id)
        self.run_id, self.trial_id = self.encode.run_id, self.encode.trial_id
        self.batch_rows, self.max_rows, self.flush_seconds = batch_rows, max_rows, flush_seconds
        self.connections = 1 if db.dialect.name == "sqlite" else connections
        self.rows_written = 0  # rows in committed transactions (duplicates included)
        self.write_seconds = 0.0  # wall time during which at least one writer had a batch in flight
        # The URL never holds a password (it comes from the environment), so redacted() is the URL.
        self._dbs = [db] + [
            ResultsDB(db.url.redacted(), retry_for=db.retry_for)
            for _ in range(self.connections - 1)
        ]
        self._pending: list = []
        self._in_flight = 0  # rows taken by writers and not yet committed
        self._busy_since = 0.0  # when _in_flight last rose from 0
        self._flush_requested = False
        self._due = 0.0
        self._closing = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._writers = [
            threading.Thread(
                target=self._write_loop, args=(writer_db,), name=f"image-logger-{i}", daemon=True
            )
            for i, writer_db in enumerate(self._dbs)
        ]
        for writer in self._writers:
            writer.start()

    def add(self, row: ImageRow) -> None:
        """Queue one row; blocks while the bounded buffer is full."""
        self.add_many([row])

    def add_many(self, rows) -> None:
        """Queue rows; blocks while the bounded buffer is full.

        Rows are encoded and handed over a batch at a time, so the writer sends one batch
        while the next is being encoded.
        """
        rows = iter(rows)
        while chunk := [self.encode(row) for row in islice(rows, self.batch_rows)]:
            self.add_encoded(chunk)

    def add_encoded(self, encoded: list) -> None:
        """Queue rows already encoded by an :class:`ImageRowEncoder` for this run, trial and DB."""
        with self._cond:
            if not self._pending:
                self._due = (
                    time.monotonic() + self.flush_seconds
                )  # the oldest waiting row's deadline
                self._cond.notify_all()
            for item in encoded:
                while len(self._pending) + self._in_flight >= self.max_rows and self._error is None:
                    self._cond.notify_all()  # the writer may still be waiting for a full batch
                    self._cond.wait()
                self._raise_if_failed()
                self._pending.append(item)
            if len(self._pending) >= self.batch_rows:
                self._cond.notify_all()

    def flush(self) -> None:
        """Return once every queued row is committed.

        Raises
        ------
        LoggerFailedError
            The DB was unreachable for longer than its retry window.
        """
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while (self._pending or self._in_flight) and self._error is None:
                self._cond.wait()
            self._raise_if_failed()

    def close(self) -> None:
        """Flush, stop the writers and close their connections."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            for writer in self._writers:
                writer.join()
            for writer_db in self._dbs:
                writer_db.close()

    def unwritten(self) -> int:
        """Rows queued but not yet committed."""
        with self._cond:
            return len(self._pending) + self._in_flight

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise LoggerFailedError(
                f"results DB {self.db.url.redacted()} unreachable; "
                f"{len(self._pending) + self._in_flight} rows not written"
            ) from self._error

    def _write_loop(self, db: ResultsDB) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                db.insert_images(batch)
            except BaseException as exc:  # keep the rows, report to the producers, stop this writer
                self._settle(batch, exc)
                return
            self._settle(batch)

    def _take_batch(self) -> list | None:
        """The next batch for a writer, once one is due; None when the writer should stop."""
        with self._cond:
            while True:
                while (
                    self._error is None
                    and not self._closing
                    and not self._flush_requested
                    and len(self._pending) < self.batch_rows
                    and not (self._pending and time.monotonic() >= self._due)
                ):
                    self._cond.wait(
                        timeout=max(0.0, self._due - time.monotonic()) if self._pending else None
                    )
                if (
                    self._error is not None
                ):  # another writer gave up: the rows stay queued for the report
                    return None
                if self._pending:
                    break
                self._flush_requested = False
                self._cond.notify_all()
                if self._closing:
                    return None
            batch = self._pending[: self.batch_rows]
            del self._pending[: self.batch_rows]
            if not self._in_flight:
                self._busy_since = time.perf_counter()
            self._in_flight += len(batch)
            return batch

    def _settle(self, batch: list, error: BaseException | None = None) -> None:
        """Account a batch as committed, or put it back in the buffer after ``error``."""
        with self._cond:
            self._in_flight -= len(batch)
            if not self._in_flight:
                self.write_seconds += time.perf_counter() - self._busy_since
            if error is None:
                self.rows_written += len(batch)
            else:
                self._pending[:0] = batch
                if self._error is None:
                    self._error = error
            self._cond.notify_all()
