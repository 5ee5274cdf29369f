"""MPI producer–consumer driver of ``python -m kernels process`` (1 rank or N ranks).

Rank 0 (the producer) reads only the run's index files and hands out small batches of
(chunk, event) work items on demand, so a slow image never stalls the others. Workers
read their frames directly, calibrate in memory and run the chain; each keeps its full
results in a rank-local cache file (node-local disk, as a burst buffer would be) and
sends back only the lean per-image rows, piggybacked on its next work request. Rank 0
owns the job's results-DB logger (one connection per full 10 ranks, 1 to 8) and
logs those rows in batches. At the end every rank publishes its cache into
``<out>/parts/``; rank 0 writes the checkpoint and, once every item is done, assembles
the run's outputs (the same files as the single-process ``process_run``).

SIGINT/SIGTERM (Slurm ``--signal``): every rank finishes its current image and takes no
more work; caches are published, DB rows flushed, the checkpoint written, and the job
exits 0 with status "preempted" in summary.json. The same command resumes.
With one rank, rank 0 produces and works.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import socket
import sys
import time
import traceback
from collections import deque
from dataclasses import replace
from pathlib import Path

from kernels.checkpoint import Checkpoint, CheckpointError, read_checkpoint, write_checkpoint
from kernels.dblog import ImageLogger, ImageRow, ImageRowEncoder, LoggerFailedError
from kernels.resultsdb import ResultsDB, canonical_json, parse_db_url
from kernels.resultsdb.dialect import dialect_for

TAG_REQUEST = (
    11  # worker -> producer: (items finished since the last request, their encoded rows, stopping)
)
TAG_WORK = 12  # producer -> worker: list of work items; empty list = no more work
CHECKPOINT_FILE = "checkpoint.json"
PARTS_DIR = "parts"
WEATHER_FILE = "weather.png"


def mpi_launched() -> bool:
    """True when this process was started by an MPI launcher (mpiexec/srun)."""
    return any(
        k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")
    )


class StopFlag:
    """Set by SIGINT or SIGTERM; checked between images."""

    def __init__(self):
        self.reason = ""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        self.reason = signal.Signals(signum).name

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def __bool__(self) -> bool:
        return bool(self.reason)


class ResultCache:
    """Rank-local, append-only stream of pickled (ImageRow, ImageResult) records."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb")
        self.records = 0

    def append(self, row: ImageRow, result) -> None:
        self.records += 1
        pickle.dump(
            (row, replace(result, spots=None)), self._file, protocol=pickle.HIGHEST_PROTOCOL
        )

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def publish(self, dest: Path) -> bool:
        """Copy the cache to shared storage atomically, drop the local copy; False if it was empty."""
        self.sync()
        self._file.close()
        if not self.records:
            self.path.unlink()
            return False
        tmp = dest.with_name(dest.name + ".tmp")
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(
                dst.fileno()
            )  # the checkpoint will say these items are done: their data must be on disk
        os.replace(tmp, dest)
        fsync_directory(dest.parent)  # ... and so must the rename
        if self.path.resolve() != dest.resolve():
            self.path.unlink()
        return True


def fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartError(Exception):
    """A published part that cannot be read whole (missing, empty, truncated or corrupt)."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"part {self.path}: {problem}")


def read_part(path: Path):
    """Yield the (ImageRow, ImageResult) records of a published cache file (our own files).

    Raises
    ------
    PartError
        The file is missing or empty, or ends inside a record (e.g. torn by a crash).
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise PartError(path, f"unreadable ({exc.strerror or exc})") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if not size:
            raise PartError(path, "empty (published parts hold at least one record)")
        while handle.tell() < size:
            offset = handle.tell()
            try:
                record = pickle.load(handle)
            except (
                Exception
            ) as exc:  # a torn pickle fails in many ways (EOFError, UnpicklingError, ...)
                raise PartError(
                    path,
                    f"truncated or corrupt at byte {offset} of {size} "
                    f"({type(exc).__name__}: {exc})",
                ) from None
            yield record


def drop_unreadable_parts(out: Path, checkpoint: Checkpoint) -> None:
    """Forget parts that do not read whole, and the finished items found in no readable part.

    Those items are processed again, so a part torn by a crash costs time, never images.
    A dropped part is kept as ``<name>.corrupt`` for inspection.
    """
    found, readable = set(), []
    for part in checkpoint.parts:
        try:
            found |= {(row.chunk, row.event) for row, _ in read_part(out / part)}
        except PartError as exc:
            print(f"error: {exc}; its images are processed again", file=sys.stderr, flush=True)
            if exc.path.exists():
                os.replace(exc.path, exc.path.with_name(exc.path.name + ".corrupt"))
            continue
        readable.append(part)
    lost = checkpoint.done - found
    if lost:
        print(
            f"error: {len(lost)} finished images of run {checkpoint.run} are in no readable part; "
            f"processing them again",
            file=sys.stderr,
            flush=True,
        )
    checkpoint.parts = readable
    checkpoint.done -= lost


def image_row(result, rank: int, host: str, t_start: float, timings: dict) -> ImageRow:
    """The lean DB row of one processed image."""
    return ImageRow(
        chunk=result.chunk,
        event=result.event,
        hit=result.hit,
        n_spots=result.n_spots,
        indexed=result.status in ("indexed", "refined", "integrated"),
        n_refined=result.n_refined,
        n_integrated=result.n_integrated,
        status=result.status,
        reason=result.reason,
        rank=rank,
        host=host,
        t_start=t_start,
        timings=timings,
    )


class Worker:
    """Processes work items of one run on one rank and caches the results."""

    def __init__(self, run, processor, cache: ResultCache, rank: int):
        self.run, self.processor, self.cache, self.rank = run, processor, cache, rank
        self.host = socket.gethostname()

    def process(self, item) -> ImageRow:
        chunk, event = item
        t_start = time.time()
        t0 = time.perf_counter()
        raw = self.run.read_frame(chunk, event)
        wavelength = self.run.wavelength(chunk, event)
        t_read = time.perf_counter() - t0
        result = self.processor.process(
            raw,
            chunk,
            event,
            float(self.run.chunks[chunk].timestamps[event]),
            wavelength=wavelength,
        )
        row = image_row(result, self.rank, self.host, t_start, {"read": t_read, **result.timings})
        self.cache.append(row, result)
        return row


class Producer:
    """Rank 0's bookkeeping: finished items, DB logging, checkpoint."""

    def __init__(self, checkpoint: Checkpoint, logger: ImageLogger | None):
        self.checkpoint = checkpoint
        self.logger = logger
        self.log_failed = False  # the DB stayed away too long: keep processing, log on the next run

    def record(self, rows) -> None:
        """Mark rows' items finished and log the rows (ImageRows, encoded here)."""
        self.checkpoint.done.update((row.chunk, row.event) for row in rows)
        self.log(rows)

    def record_encoded(self, items, encoded) -> None:
        """Mark work items finished and log their rows, encoded by the workers."""
        self.checkpoint.done.update(map(tuple, items))
        self._log(lambda logger: logger.add_encoded(encoded), encoded)

    def log(self, rows) -> None:
        """Queue ImageRows for the DB."""
        self._log(lambda logger: logger.add_many(rows), rows)

    def _log(self, add, rows) -> None:
        if self.logger is not None and rows and not self.log_failed:
            try:
                add(self.logger)
            except LoggerFailedError as exc:
                self.report(exc)

    def flush_log(self) -> bool:
        """Commit every row logged so far; False if the DB could not take them."""
        if self.logger is not None and not self.log_failed:
            try:
                self.logger.flush()
            except LoggerFailedError as exc:
                self.report(exc)
        return not self.log_failed

    def report(self, exc: LoggerFailedError) -> None:
        """Stop logging for this session; the rows stay in the parts for the next run."""
        self.log_failed = True
        print(
            f"error: {exc}; processing goes on, results are kept and the same command logs them later",
            file=sys.stderr,
            flush=True,
        )

    def close_log(self, summary: dict) -> None:
        """Record the run summary and close the DB connection."""
        logger = self.logger
        if logger is None:
            return
        if self.log_failed:
            logger.db.close()
            return
        funnel = {
            k: summary[k]
            for k in ("images", "hits", "indexed", "refined", "integrated")
            if k in summary
        }
        funnel.setdefault("images", len(self.checkpoint.done))
        try:
            logger.db.record_run_summary(
                logger.run_id,
                logger.trial_id,
                summary["status"],
                funnel,
                summary.get("timings", {}),
            )
        except Exception as exc:  # the rows are what matters; the summary is rewritten next time
            print(f"warning: run summary not recorded in the results DB: {exc}", file=sys.stderr)
        logger.close()


def params_digest(params) -> str:
    return hashlib.sha256(canonical_json(params.to_dict()).encode()).hexdigest()


def load_or_restart_checkpoint(out: Path, run, trial: str, digest: str) -> Checkpoint:
    """The run's checkpoint; a corrupt or foreign one is reported, set aside, and the run restarts clean."""
    path = out / CHECKPOINT_FILE
    try:
        checkpoint = read_checkpoint(path, run.name, trial, digest)
    except CheckpointError as exc:
        print(
            f"error: {exc}; restarting run {run.name} from scratch "
            f"(bad file kept as {path.name}.corrupt)",
            file=sys.stderr,
            flush=True,
        )
        os.replace(path, path.with_name(path.name + ".corrupt"))
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
        checkpoint = None
    return checkpoint or Checkpoint(run.name, trial, digest, run.n_events)


RANKS_PER_DB_CONNECTION = 10  # the goal allows at most one results-DB connection per 10 ranks
# The logger's default buffer (500 000 rows) keeps 8 writers of 50 000-row batches busy, a DB
# server rarely has more cores to give one job (one server thread per connection), and
# hundreds of connections would exceed its max_connections (151 by default).
MAX_LOGGER_CONNECTIONS = 8


def logger_connections(ranks: int) -> int:
    """Writer connections for a job of ``ranks`` ranks: one per full 10 ranks, at least one, at most 8.

    Rounded down, not up, so a job of 10 or more ranks never holds more than one
    connection per 10 ranks; a smaller job still needs its one.
    """
    return min(MAX_LOGGER_CONNECTIONS, max(1, ranks // RANKS_PER_DB_CONNECTION))


def open_logger(args, run, params, ranks: int) -> ImageLogger | None:
    """The job's logger, with ``logger_connections(ranks)`` writers (None without --db).

    The main thread uses the first writer's connection only before logging starts and
    after the final flush (run summary), never while the writer threads are busy.

    Raises
    ------
    LoggerFailedError
        The DB stayed unreachable for its whole retry window: the job runs on without it,
        like after an outage mid-run.
    """
    if not args.db:
        return None
    db = ResultsDB(args.db)
    try:
        run_id = db.ensure_run(experiment_name(args), run.name)
        trial_id = db.ensure_trial(args.trial, params.to_dict())
    except Exception as exc:
        if not db.dialect.is_transient(exc):
            raise
        db.close()
        raise LoggerFailedError(
            f"results DB {db.url.redacted()} unreachable at the start of the job "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return ImageLogger(db, run_id, trial_id, connections=logger_connections(ranks))


def experiment_name(args) -> str:
    """The experiment the run is logged under: ``--experiment``, else the ``<exp>`` of ``<exp>/runs/rNNNN``.

    The pipeline passes the beamtime's experiment name, which its HPC folder need not carry.
    """
    return getattr(args, "experiment", None) or Path(args.run).resolve().parent.parent.name


def _records(out: Path, checkpoint: Checkpoint):
    """(row, result) of every finished item, once each, from the published parts."""
    seen = set()
    for part in checkpoint.parts:
        for row, result in read_part(out / part):
            key = (row.chunk, row.event)
            if key in checkpoint.done and key not in seen:
                seen.add(key)
                yield row, result


def produce(comm, queue: deque, producer: Producer, stop: StopFlag, batch: int) -> None:
    """Hand out work on demand until the queue is empty or a stop is requested."""
    from mpi4py import MPI

    active = comm.Get_size() - 1
    status = MPI.Status()
    while active:
        if not comm.Iprobe(source=MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status):
            time.sleep(0.0005)  # polling keeps signals deliverable to Python
            continue
        source = status.Get_source()
        items, encoded, stopping = comm.recv(source=source, tag=TAG_REQUEST)
        producer.record_encoded(items, encoded)
        if stopping:
            stop.set(f"rank {source} stopping")
        if stop or not queue:
            comm.send([], dest=source, tag=TAG_WORK)
            active -= 1
            continue
        share = max(
            1, min(batch, len(queue) // (comm.Get_size() - 1))
        )  # small batches near the tail
        comm.send(
            [queue.popleft() for _ in range(min(share, len(queue)))], dest=source, tag=TAG_WORK
        )


def consume(comm, worker: Worker, encode: ImageRowEncoder | None, stop: StopFlag) -> None:
    """Ask for work, process it, report finished items with the next request; stop when told or signalled.

    Rows go to rank 0 already encoded for the DB, so the logger only concatenates them.
    """
    done: list = []
    encoded: list = []
    while True:
        comm.send((done, encoded, bool(stop)), dest=0, tag=TAG_REQUEST)
        items = comm.recv(source=0, tag=TAG_WORK)
        if not items:
            return
        done, encoded = [], []
        for item in items:
            if stop:
                break
            row = worker.process(item)
            done.append(item)
            if encode is not None:
                encoded.append(encode(row))
        worker.cache.sync()  # results are durable before they are reported finished


def assemble(
    out: Path, checkpoint: Checkpoint, params, wall: float, size: int, db_seconds: float | None
) -> dict:
    """Write the run's outputs from all parts, in (chunk, event) order: same as one process."""
    from kernels.atomic_io import write_json
    from kernels.process import summarise, write_image_table, write_reflections
    from kernels.reflections import INTEGRATED_FILE
    from kernels.weather import plot_weather, segments_from_rows

    records = sorted(_records(out, checkpoint), key=lambda rec: (rec[0].chunk, rec[0].event))
    results = [result for _, result in records]
    summary = summarise(results, wall, checkpoint.run, checkpoint.trial)
    summary.update(params=params.to_dict(), ranks=size, sessions=checkpoint.sessions)
    if db_seconds is not None:  # this session's DB transactions vs the processing they record
        processing = sum(summary["timings"]["stage_seconds"].values())
        summary["timings"]["db_write_seconds"] = db_seconds
        summary["timings"]["db_share_of_processing"] = (
            db_seconds / processing if processing else 0.0
        )
    write_image_table(out / "images.csv", results)
    write_reflections(out / INTEGRATED_FILE, results, checkpoint.run, checkpoint.trial, params)
    plot_weather(
        segments_from_rows(row for row, _ in records),
        out / WEATHER_FILE,
        title=f"{checkpoint.run} / {checkpoint.trial}",
    )
    write_json(out / "summary.json", summary)
    return summary


def run_mpi(args) -> int:
    """``python -m kernels process`` on 1..N MPI ranks with results DB, checkpoint and resume.

    Returns the process exit code: 0 complete or preempted, 2 bad input, 3 results DB
    unreachable (results kept; rerun the same command to log them).
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    try:
        return _run(comm, args)
    except Exception:
        if comm.Get_size() == 1:
            raise
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)  # a dead rank would otherwise leave the others waiting forever
        return 1


def _run(comm, args) -> int:
    from kernels.atomic_io import write_json
    from kernels.calibration import CalibrationError, load_calibration
    from kernels.pipeline import ParamsError, Processor
    from kernels.process import default_calibration, load_params
    from kernels.resultsdb import DbUrlError, SchemaError, TrialParamsChangedError
    from kernels.runformat import RunFormatError, open_run

    rank, size = comm.Get_rank(), comm.Get_size()
    stop = StopFlag()
    started = time.perf_counter()
    out = Path(args.out)
    error, run, params, producer, session = None, None, None, None, None
    try:  # every rank checks its inputs; all agree before any work is handed out
        params = load_params(args.params)
        run = open_run(args.run)
        if rank > 0 or size == 1:
            calib = load_calibration(args.calib or default_calibration(run.dir), run.geometry.shape)
            processor = Processor(calib, run.geometry, params)
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            checkpoint = load_or_restart_checkpoint(out, run, args.trial, params_digest(params))
            drop_unreadable_parts(out, checkpoint)
            (out / PARTS_DIR).mkdir(exist_ok=True)
            producer = Producer(checkpoint, None)
            try:
                producer.logger = open_logger(args, run, params, size)
            except LoggerFailedError as exc:
                producer.report(exc)
            if (
                producer.logger is not None and not checkpoint.logged
            ):  # an earlier outage: log its rows now
                producer.log([row for row, _ in _records(out, checkpoint)])
            session = f"s{checkpoint.sessions + 1:03d}"
    except (
        RunFormatError,
        CalibrationError,
        ParamsError,
        DbUrlError,
        SchemaError,
        TrialParamsChangedError,
        SystemExit,
        OSError,
    ) as exc:
        error = f"rank {rank}: {exc}"
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        if rank == 0:
            print("error: " + "; ".join(errors), file=sys.stderr, flush=True)
        return 2
    log_to = None  # (url, run_id, trial_id) for the workers' row encoders
    if rank == 0 and producer.logger is not None:
        log_to = (args.db, producer.logger.run_id, producer.logger.trial_id)
    session, log_to = comm.bcast((session, log_to))

    cache = None
    if rank > 0 or size == 1:
        cache_dir = Path(args.cache_dir) if getattr(args, "cache_dir", None) else out / "cache"
        tag = hashlib.sha256(args.trial.encode()).hexdigest()[:12]
        cache = ResultCache(cache_dir / f"{run.name}-{tag}-{session}-rank{rank:05d}.pkl")
        worker = Worker(run, processor, cache, rank)

    if rank == 0:
        checkpoint = producer.checkpoint
        queue = deque(item for item in run.events if item not in checkpoint.done)
        if size == 1:
            while queue and not stop:
                producer.record([worker.process(queue.popleft())])
        else:
            produce(comm, queue, producer, stop, getattr(args, "batch", 4) or 4)
    else:
        encode = (
            ImageRowEncoder(dialect_for(parse_db_url(log_to[0])), *log_to[1:]) if log_to else None
        )
        consume(comm, worker, encode, stop)

    part = None
    if cache is not None and cache.publish(out / PARTS_DIR / cache.path.name):
        part = f"{PARTS_DIR}/{cache.path.name}"
    parts = comm.gather(part)
    run.close()
    if rank != 0:
        return 0

    checkpoint.parts += [p for p in parts if p]
    checkpoint.sessions += 1
    logged = producer.flush_log()
    checkpoint.logged = logged  # earlier sessions' unlogged rows were re-queued at start
    write_checkpoint(out / CHECKPOINT_FILE, checkpoint)

    wall = time.perf_counter() - started
    if len(checkpoint.done) == checkpoint.n_events:
        db_seconds = producer.logger.write_seconds if producer.logger is not None else None
        summary = assemble(out, checkpoint, params, wall, size, db_seconds)
    else:
        summary = {
            "run": run.name,
            "trial": args.trial,
            "status": "preempted",
            "reason": stop.reason,
            "images_done": len(checkpoint.done),
            "images_total": checkpoint.n_events,
            "sessions": checkpoint.sessions,
            "ranks": size,
        }
        write_json(out / "summary.json", summary)
    producer.close_log(summary)
    print(
        f"{run.name}: {summary['status']}, {len(checkpoint.done)}/{checkpoint.n_events} images "
        f"on {size} rank(s) in {wall:.1f} s -> {out / 'summary.json'}",
        flush=True,
    )
    return 0 if logged else 3
