"""The live DAQ: a run written chunk by chunk at the beam's frame rate, each chunk marked closed.

Per run, in this order (the contract of :mod:`kernels.io.chunk_marker`):

1. the calibration snapshot, then ``STARTED.json`` listing it;
2. per chunk, no earlier than the moment its last frame is taken (``t0 + events / rate``): its
   chunk and index files fsynced and closed, then ``r0001-cNN.closed.json``;
3. the truth, then ``CONCLUDED.json``, last.

Chunks are rendered ahead by worker processes (rendering 1 Mpix frames is slower than 120 Hz on
a small machine); the pacing is in the closing, which is what a reader downstream sees. When
rendering falls behind the frame rate, chunks close as soon as they are ready and the lag is
logged. Each marker can also be published as a Redis stream message (``notify``), in order.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from facility.beamline.simulate import (
    SimulationParams,
    chunk_jobs,
    chunk_pool,
    prepare_experiment,
    simulate_chunk,
    write_run_truth,
)
from kernels.io.chunk_marker import (
    started_to_stream_fields,
    write_chunk_marker,
    write_started,
)
from kernels.io.marker import chunk_name, run_name, write_marker

Notify = Callable[[dict[str, str]], None]  # one Redis stream message (fields)


@dataclass(frozen=True)
class LiveOptions:
    """How a live beamtime runs: frame rate, pause between runs, where events go.

    ``crash_after_chunks`` stops the DAQ after that many chunks of its first run, without a run
    marker (a DAQ that died), for fault tests and demos.
    """

    frame_rate_hz: float = 120.0
    run_gap_seconds: float = 0.0
    notify: Notify | None = None
    crash_after_chunks: int | None = None

    def __post_init__(self):
        if self.frame_rate_hz <= 0 or self.run_gap_seconds < 0:
            raise ValueError("frame rate must be > 0 and the gap between runs >= 0")


def close_time(t0: float, last_event: int, frame_rate_hz: float) -> float:
    """When a chunk whose last frame is event ``last_event`` (0-based) can close."""
    return t0 + (last_event + 1) / frame_rate_hz


def fsync_files(paths) -> None:
    """Flush each file to stable storage, then its folder (the DAQ's close)."""
    folders = set()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders.add(os.path.dirname(path))
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _close_chunk(run_dir: Path, number: int, result, options: LiveOptions) -> None:
    chunk, _, wavelengths, _ = result
    name = chunk_name(run_name(number), chunk)
    files = [run_dir / name, run_dir / (name[: -len(".h5")] + ".idx.h5")]
    fsync_files(files)
    marker = write_chunk_marker(run_dir, number, chunk, len(wavelengths), files)
    if options.notify:
        options.notify(marker.to_stream_fields())


def acquire_run(
    pool, out: Path, number: int, images: int, seed: int, params, crystal, options, log=print
) -> Path:
    """Acquire one run live into ``out/runs/<name>``; return its folder (see the module doc)."""
    name = run_name(number)
    run_dir = out / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "calib" / "calibration.h5", run_dir / "calibration.h5")
    fsync_files([run_dir / "calibration.h5"])
    started = write_started(run_dir, number, options.frame_rate_hz, files=["calibration.h5"])
    if options.notify:
        options.notify(started_to_stream_fields(started))
    t0 = time.time()
    results = []
    for result in pool.map(simulate_chunk, chunk_jobs(run_dir, number, images, seed, params, t0)):
        due = close_time(t0, result[1] + len(result[2]) - 1, options.frame_rate_hz)
        lag = time.time() - due
        if lag < 0:
            time.sleep(-lag)
        elif lag > 1.0:
            log(f"{name}: chunk {result[0]} closes {lag:.1f} s late (rendering is behind)")
        _close_chunk(run_dir, number, result, options)
        results.append(result)
        if len(results) == options.crash_after_chunks:
            log(f"{name}: DAQ stopped after {len(results)} chunks (no run marker)")
            pool.shutdown(wait=False, cancel_futures=True)  # the chunks it never took
            return run_dir
    write_run_truth(out / "truth" / f"{name}.h5", crystal, results)
    marker = write_marker(run_dir, number)
    if options.notify:
        options.notify(marker.to_stream_fields())
    log(f"{name}: {images} images live at {options.frame_rate_hz:g} Hz -> {run_dir}")
    return run_dir


def simulate_live(
    out,
    runs: int,
    images: int,
    seed: int = 0,
    params: SimulationParams | None = None,
    options: LiveOptions | None = None,
    first_run: int = 1,
    workers: int | None = None,
    log=print,
) -> list[Path]:
    """A live beamtime: ``runs`` runs of ``images`` events, one after the other in real time.

    Same crystal, detector and shots as :func:`~facility.beamline.simulate.simulate_experiment`
    with the same seed; the frames' timestamps follow the frame rate.
    """
    options = options or LiveOptions()
    params = params or SimulationParams()
    params = replace(params, rep_rate_hz=options.frame_rate_hz)  # timestamps follow the beam
    out = Path(out)
    crystal, renderer = prepare_experiment(out, seed, params)
    run_dirs = []
    with chunk_pool(renderer, workers) as pool:
        for number in range(first_run, first_run + runs):
            if run_dirs and options.run_gap_seconds:
                time.sleep(options.run_gap_seconds)
            run_dirs.append(
                acquire_run(pool, out, number, images, seed, params, crystal, options, log)
            )
            if options.crash_after_chunks is not None:
                break  # the DAQ died
    return run_dirs


def redis_notify(url: str, stream: str) -> Notify:
    """A ``notify`` that appends each marker to the Redis stream ``stream`` (XADD)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=10)
    return lambda fields: client.xadd(stream, fields)
