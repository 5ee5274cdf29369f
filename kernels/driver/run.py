"""MPI producer–consumer driver of ``python -m kernels process`` (1 rank or N ranks).

Rank 0 (the producer) reads only the run's index files and hands out small batches of
(chunk, event) work items on demand (:mod:`~kernels.driver.protocol`), so a slow image never
stalls the others. Workers read their frames directly, calibrate in memory and run the chain;
each keeps its full results in a rank-local cache file and sends back only the lean per-image
rows (:mod:`~kernels.driver.parts`, :mod:`~kernels.driver.worker`). Rank 0 owns the job's
results-DB logger (:mod:`~kernels.driver.dbpolicy`) and logs those rows in batches. At the end
every rank publishes its cache into ``<out>/parts/``; rank 0 writes the checkpoint
(:mod:`~kernels.driver.checkpoints`) and, once every item is done, assembles the run's outputs
(:mod:`~kernels.driver.assemble`).

SIGINT/SIGTERM (Slurm ``--signal``): every rank finishes its current image and takes no
more work; caches are published, DB rows flushed, the checkpoint written, and the job
exits 5 with status "preempted" in summary.json. The same command resumes.
With one rank, rank 0 produces and works.

With ``--live`` the run is still being acquired: rank 0 waits for chunk 0's marker, then
hands out each chunk's events as its marker appears (:mod:`~kernels.driver.feed`) and ends
once the run marker is there and every chunk is done, with the same outputs as a post-run
job. No chunk for ``--live-timeout`` seconds and no run marker: the job publishes and
assembles what it processed (status "stalled", exit code 4); the same command resumes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from kernels.driver.assemble import assemble, write_preempted, write_summary
from kernels.driver.checkpoints import CHECKPOINT_FILE, load_or_restart_checkpoint, params_digest
from kernels.driver.dbpolicy import open_logger
from kernels.driver.feed import LiveFeed, RunFeed, wait_for_first_chunk
from kernels.driver.options import ProcessOptions
from kernels.driver.parts import (
    PARTS_DIR,
    Record,
    ResultCache,
    drop_unreadable_parts,
    finished_records,
)
from kernels.driver.producer import Producer
from kernels.driver.protocol import consume, produce
from kernels.driver.signals import StopFlag
from kernels.driver.so_far import db_sink, file_sink, start_run_so_far
from kernels.driver.worker import Worker
from kernels.foreign import ForeignRun, open_foreign_run
from kernels.io.checkpoint import write_checkpoint
from kernels.io.geom import GeometryFileError
from kernels.io.live_run import open_ready
from kernels.io.marker import MarkerError
from kernels.io.readers.base import ReaderError
from kernels.io.runformat import Run, RunFormatError, open_run
from kernels.merging.running import RunningMerge
from kernels.merging.settings import merge_params
from kernels.outputs import SUMMARY_FILE
from kernels.process import load_params, run_processor
from kernels.resultsdb import DbUrlError, SchemaError, TrialParamsChangedError, parse_db_url
from kernels.resultsdb.dialect import dialect_for
from kernels.resultsdb.logger import ImageRowEncoder, LoggerFailedError
from kernels.stages.calibration import CalibrationError
from kernels.stages.pipeline import ParamsError, ProcessingParams, Processor
from kernels.stages.trial_detector import TrialGeometryError

log = logging.getLogger(__name__)
INPUT_ERRORS = (
    RunFormatError,
    CalibrationError,
    ParamsError,
    DbUrlError,
    SchemaError,
    TrialParamsChangedError,
    MarkerError,
    TrialGeometryError,
    ReaderError,
    GeometryFileError,
    OSError,
)


class JobInputError(Exception):
    """Some rank found its inputs unusable before any work was handed out (exit code 2)."""


EXIT_PREEMPTED = 5  # stopped by a signal before the run was done; the same command resumes


@dataclass(frozen=True)
class JobResult:
    """How a rank's part of the job ended: its exit code and, on rank 0, the run summary."""

    exit_code: int
    summary: dict | None = None
    message: str = ""  # rank 0's one-line account of the session, for the CLI to print


@dataclass
class Setup:
    """What a rank prepared before work starts (``processor`` on working ranks, ``producer``
    on rank 0)."""

    run: Run | ForeignRun
    params: ProcessingParams
    processor: Processor | None = None
    producer: Producer | None = None
    session: str = ""


def run_mpi(options: ProcessOptions) -> JobResult:
    """``python -m kernels process`` on 1..N MPI ranks with results DB, checkpoint and resume.

    Exit codes: 0 complete, 2 bad input (a malformed chunk marker or chunk met
    mid-run is reported after what was processed is published), 3 results DB unreachable
    (results kept; rerun the same command to log them), 4 a live run stalled (no new chunk for
    ``live_timeout`` seconds and no run marker; what was processed is assembled and published),
    5 preempted (SIGTERM/SIGINT: the same command resumes; not 0, so a job stopped by Slurm's
    ``--signal`` before its time limit is not recorded COMPLETED and merged as a whole run).

    Raises
    ------
    JobInputError
        On rank 0 when any rank found bad input (the other ranks return exit code 2).
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    try:
        return _run(comm, options)
    except JobInputError:
        raise
    except Exception:
        if comm.Get_size() == 1:
            raise
        log.exception("rank %d failed; aborting the job", comm.Get_rank())
        comm.Abort(1)  # a dead rank would otherwise leave the others waiting forever
        return JobResult(1)


def _run(comm, options: ProcessOptions) -> JobResult:
    rank, size = comm.Get_rank(), comm.Get_size()
    stop = StopFlag()
    started = time.perf_counter()
    setup, error = None, None
    first = _first_chunk(comm, options) if options.live else True
    if first is False:
        message = f"{options.run}: no chunk within {options.live_timeout:g} s: stalled"
        return JobResult(4, None, message if rank == 0 else "")
    try:  # every rank checks its inputs; all agree before any work is handed out
        if first is not True:
            raise MarkerError(*first)
        setup = _prepare(options, rank, size)
    except INPUT_ERRORS as exc:
        error = f"rank {rank}: {exc}"
    errors = [e for e in comm.allgather(error) if e]
    if errors or setup is None:
        if rank == 0:
            raise JobInputError("; ".join(errors))
        return JobResult(2)
    producer = setup.producer
    log_to = None  # (url, run_id, trial_id) for the workers' row encoders
    if producer is not None and producer.logger is not None:
        log_to = (options.db, producer.logger.run_id, producer.logger.trial_id)
    setup.session, log_to = comm.bcast((setup.session, log_to))

    worker = None
    if setup.processor is not None:
        tag = hashlib.sha256(options.trial.encode()).hexdigest()[:12]
        name = f"{setup.run.name}-{tag}-{setup.session}-rank{rank:05d}.pkl"
        worker = Worker(setup.run, setup.processor, ResultCache(options.cache_folder / name), rank)
    feed: RunFeed | LiveFeed = RunFeed(setup.run)
    if isinstance(setup.run, Run) and options.live:  # options refuse --live on facility files
        feed = LiveFeed(setup.run, options.live_timeout)
    if producer is not None:
        _produce(comm, feed, producer, worker, stop, options.batch)
    elif worker is not None:
        encode = None
        if log_to is not None:
            encode = ImageRowEncoder(dialect_for(parse_db_url(log_to[0])), *log_to[1:])
        consume(comm, worker, encode, stop, live=options.live)

    part = None
    if worker is not None and worker.cache.publish(
        options.out / PARTS_DIR / worker.cache.path.name
    ):
        part = f"{PARTS_DIR}/{worker.cache.path.name}"
    parts = comm.gather(part)
    setup.run.close()
    if producer is None:
        return JobResult(0)
    producer.checkpoint.n_events = setup.run.n_events  # a live run has grown since it opened
    ending = _ending(feed, stop)
    return _finish(options.out, setup, producer, parts, ending, started, size)


def _prepare(options: ProcessOptions, rank: int, size: int) -> Setup:
    """Check this rank's inputs and set up its share: processor (workers), producer (rank 0)."""
    params = load_params(options.params)
    setup = Setup(_open(options), params)
    run = setup.run
    if rank > 0 or size == 1:
        setup.processor = _processor(options, run, params)
    if rank == 0:
        out = options.out
        out.mkdir(parents=True, exist_ok=True)
        checkpoint = load_or_restart_checkpoint(
            out, run.name, run.n_events, options.trial, params_digest(params)
        )
        drop_unreadable_parts(out, checkpoint)
        (out / PARTS_DIR).mkdir(exist_ok=True)
        producer = setup.producer = Producer(checkpoint, None)
        try:
            producer.logger = open_logger(options, run.name, params, size)
        except LoggerFailedError as exc:
            producer.report(exc)
        if producer.logger is not None and not checkpoint.logged:  # an earlier outage: log now
            producer.log([row for row, _ in finished_records(out, checkpoint)])
        if options.live:  # earlier sessions' records, read once: kept, and merged so far
            earlier = list(finished_records(out, checkpoint))
            producer.kept = {(row.chunk, row.event): (row, result) for row, result in earlier}
            producer.so_far = _run_so_far(options, params, producer, earlier)
        setup.session = f"s{checkpoint.sessions + 1:03d}"
    return setup


def _open(options: ProcessOptions) -> Run | ForeignRun:
    """The job's run: facility files from their own frame counts, a live run's readable
    chunks, or a concluded run's index files."""
    if options.foreign:
        geometry = str(options.geometry) if options.geometry else None
        tags = dict(options.event_tags)
        return open_foreign_run([options.run], geometry, options.adu_per_photon, tags)
    return open_ready(options.run) if options.live else open_run(options.run)


def _processor(options: ProcessOptions, run: Run | ForeignRun, params) -> Processor:
    """The chain on the run's detector: a foreign run's panels and gain, or the chunk
    format's (its flat geometry with its calibration file, or the trial's panels)."""
    if isinstance(run, ForeignRun):
        return run.processor(params)
    return run_processor(run, options.calib, params)


def _run_so_far(
    options: ProcessOptions, params: ProcessingParams, producer: Producer, earlier: list[Record]
):
    """A live job's run-so-far merge, to ``run_so_far.json`` and the results DB's row, holding
    the ``earlier`` sessions' images."""
    sinks = [file_sink(options.out)]
    if producer.logger is not None and options.db:
        sinks.append(db_sink(options.db, producer.logger.run_id, producer.logger.trial_id))
    running = RunningMerge(params.crystal.symmetry(), merge_params(options.params))
    every = (options.merge_every_images, options.merge_every_seconds)
    return start_run_so_far(running, earlier, *every, sinks)


def _first_chunk(comm, options: ProcessOptions) -> bool | tuple[str, str]:
    """Rank 0 waits for a live run's chunk 0, and tells every rank: True when it is there,
    False after the timeout, (file, problem) of a malformed chunk marker."""
    outcome: bool | tuple[str, str] = True
    if comm.Get_rank() == 0:
        try:
            outcome = wait_for_first_chunk(options.run, options.live_timeout)
        except MarkerError as exc:
            outcome = (exc.origin, exc.problem)
    return comm.bcast(outcome)


def _produce(
    comm, feed: RunFeed | LiveFeed, producer: Producer, worker: Worker | None, stop, batch: int
) -> None:
    """Rank 0's loop: hand out the unfinished items, or process them itself on one rank."""
    if worker is None:
        produce(comm, feed, producer, stop, batch)
        return
    queue: deque = deque()
    while not stop:
        queue.extend(item for item in feed.poll() if item not in producer.checkpoint.done)
        if queue:
            row, result = worker.process(queue.popleft())
            live = producer.kept is not None
            producer.record([row], [(row, replace(result, spots=None))] if live else [])
        elif feed.ended:
            return
        else:
            time.sleep(feed.poll_seconds)


@dataclass(frozen=True)
class Ending:
    """Why a session's work ended: stop reason, the run's state, a bad chunk or marker."""

    reason: str
    stalled: bool = False
    error: Exception | None = None


def _ending(feed: RunFeed | LiveFeed, stop: StopFlag) -> Ending:
    if feed.error is not None:
        return Ending(f"bad input: {feed.error}", error=feed.error)
    if feed.stalled and not stop:
        return Ending("stalled: no new chunk and no run marker", stalled=True)
    return Ending(stop.reason)


def _finish(
    out: Path,
    setup: Setup,
    producer: Producer,
    parts: list,
    ending: Ending,
    started: float,
    size: int,
) -> JobResult:
    """Rank 0 after the work: flush the DB, write the checkpoint, then the outputs (those of
    what was processed, too, when a live run stalled: it can be merged as far as it got)."""
    checkpoint = producer.checkpoint
    checkpoint.parts += [p for p in parts if p]
    checkpoint.sessions += 1
    logged = producer.flush_log()
    checkpoint.logged = logged  # earlier sessions' unlogged rows were re-queued at start
    write_checkpoint(out / CHECKPOINT_FILE, checkpoint)
    wall = time.perf_counter() - started
    complete = len(checkpoint.done) == checkpoint.n_events and not ending.reason
    if complete or (ending.stalled and checkpoint.done):
        db_seconds = producer.logger.write_seconds if producer.logger is not None else None
        tags, files = setup.run.event_tags(), setup.run.chunk_files()
        kept = producer.kept  # a live job's records, else read back from the parts
        records = list(kept.values()) if kept is not None else None
        summary = assemble(
            out, checkpoint, setup.params, wall, size, db_seconds, tags, files, records
        )
        if not complete:
            summary = write_summary(out, {**summary, "status": "stalled", "reason": ending.reason})
    else:
        status = "stalled" if ending.stalled else "preempted"
        summary = write_preempted(out, checkpoint, ending.reason, size, status)
    if producer.so_far is not None:
        producer.so_far.publish(final=complete)
    producer.close_log(summary)
    message = (
        f"{checkpoint.run}: {summary['status']}, {len(checkpoint.done)}/{checkpoint.n_events} "
        f"images on {size} rank(s) in {wall:.1f} s -> {out / SUMMARY_FILE}"
    )
    if ending.error is not None:
        return JobResult(2, summary, f"{message}\nerror: {ending.error}")
    return JobResult(_exit_code(logged, ending.stalled, complete), summary, message)


def _exit_code(logged: bool, stalled: bool, complete: bool) -> int:
    """3 rows not all in the DB, 4 stalled, 5 preempted, else 0 (the run is complete)."""
    if not logged:
        return 3
    return 4 if stalled else 0 if complete else EXIT_PREEMPTED
