"""Long runs from a few rendered chunks: the same frames laid out again under new chunk names.

Rendering 1 Mpix frames is far slower than a beam's frame rate on a small machine, and a run of
20 000 images is 40 GB; the bench needs such runs both post-run (all at once, then the run
marker) and live (chunk by chunk on the frame clock, as :mod:`facility.beamline.live` does).
Chunk ``c`` of a laid-out run is a hard link to rendered chunk ``c mod k`` (no new bytes on the
beamline side) with its own index file (the index names its chunk file).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import h5py

from facility.beamline.live import LiveOptions, close_time, fsync_files
from kernels.io.chunk_marker import started_to_stream_fields, write_chunk_marker, write_started
from kernels.io.marker import chunk_name, run_name, write_marker


def rendered_chunks(source_run: Path) -> list[Path]:
    """The chunk files of a rendered run, in chunk order."""
    return sorted(p for p in source_run.glob("r*-c*.h5") if not p.name.endswith(".idx.h5"))


def index_name(chunk_file: str) -> str:
    return chunk_file[: -len(".h5")] + ".idx.h5"


def lay_out_chunk(source_run: Path, run_dir: Path, number: int, chunk: int) -> tuple[list, int]:
    """Chunk ``chunk`` of run ``number`` from the rendered ones; (its two files, its events)."""
    sources = rendered_chunks(source_run)
    source = sources[chunk % len(sources)]
    name = chunk_name(run_name(number), chunk)
    target = run_dir / name
    if not target.exists():
        os.link(source, target)
    index = run_dir / index_name(name)
    shutil.copyfile(source_run / index_name(source.name), index)
    with h5py.File(index, "r+") as f:
        f.attrs["chunk"] = name  # the index names its own chunk file
        events = len(f["event"])
    return [target, index], events


def _prepare(source_run: Path, exp_dir: Path, number: int) -> Path:
    run_dir = exp_dir / "runs" / run_name(number)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_run / "calibration.h5", run_dir / "calibration.h5")
    return run_dir


def replay_post_run(source_run: Path, exp_dir: Path, number: int, chunks: int) -> Path:
    """Run ``number`` of ``chunks`` chunks, written at once and concluded (a post-run DAQ)."""
    run_dir = _prepare(source_run, exp_dir, number)
    for chunk in range(chunks):
        lay_out_chunk(source_run, run_dir, number, chunk)
    write_marker(run_dir, number)
    return run_dir


def replay_live(
    source_run: Path, exp_dir: Path, number: int, chunks: int, options: LiveOptions
) -> list[tuple[int, float]]:
    """Run ``number`` acquired live on the frame clock; returns (chunk, closed at) per chunk."""
    run_dir = _prepare(source_run, exp_dir, number)
    started = write_started(run_dir, number, options.frame_rate_hz, files=["calibration.h5"])
    if options.notify:
        options.notify(started_to_stream_fields(started))
    t0, events, closed = time.time(), 0, []
    for chunk in range(chunks):
        files, n = lay_out_chunk(source_run, run_dir, number, chunk)
        events += n
        time.sleep(max(0.0, close_time(t0, events - 1, options.frame_rate_hz) - time.time()))
        fsync_files(files)
        marker = write_chunk_marker(run_dir, number, chunk, n, files)
        if options.notify:
            options.notify(marker.to_stream_fields())
        closed.append((chunk, time.time()))
    marker = write_marker(run_dir, number)
    if options.notify:
        options.notify(marker.to_stream_fields())
    return closed
