"""Output assembly: once every item is done, rank 0 writes the run's outputs from all parts,
the same files as the single-process run plus the computational-weather plot; a preempted
session writes a short summary instead."""

from __future__ import annotations

from pathlib import Path

from kernels.driver.parts import Record, finished_records
from kernels.io.atomic import write_json
from kernels.io.checkpoint import Checkpoint
from kernels.io.reflections import INTEGRATED_FILE
from kernels.io.weather import plot_weather, segments_from_rows
from kernels.outputs import (
    IMAGES_FILE,
    SUMMARY_FILE,
    EventTags,
    summarise,
    write_image_table,
    write_reflections,
)
from kernels.stages.pipeline import ProcessingParams

WEATHER_FILE = "weather.png"


def assemble(
    out: Path,
    checkpoint: Checkpoint,
    params: ProcessingParams,
    wall: float,
    size: int,
    db_seconds: float | None,
    event_tags: EventTags | None = None,
    chunk_files: list[str] | None = None,
    records: list[Record] | None = None,
) -> dict:
    """Write the run's outputs from all parts, in (chunk, event) order: same as one process
    (``event_tags``: the run files' per-event tags, ``Run.event_tags``; ``chunk_files``: each
    chunk's file, ``Run.chunk_files``; ``records``: every finished item's, when rank 0 kept
    them as they came, so the parts need not be read back)."""
    if records is None:
        records = list(finished_records(out, checkpoint))
    records = sorted(records, key=lambda rec: (rec[0].chunk, rec[0].event))
    results = [result for _, result in records]
    summary = summarise(results, wall, checkpoint.run, checkpoint.trial)
    summary.update(params=params.to_dict(), ranks=size, sessions=checkpoint.sessions)
    if db_seconds is not None:  # this session's DB transactions vs the processing they record
        processing = sum(summary["timings"]["stage_seconds"].values())
        summary["timings"]["db_write_seconds"] = db_seconds
        summary["timings"]["db_share_of_processing"] = (
            db_seconds / processing if processing else 0.0
        )
    write_image_table(out / IMAGES_FILE, results)
    run, trial = checkpoint.run, checkpoint.trial
    write_reflections(out / INTEGRATED_FILE, results, run, trial, params, event_tags, chunk_files)
    plot_weather(
        segments_from_rows(row for row, _ in records),
        out / WEATHER_FILE,
        title=f"{checkpoint.run} / {checkpoint.trial}",
    )
    write_json(out / SUMMARY_FILE, summary)
    return summary


def write_summary(out: Path, summary: dict) -> dict:
    """Write ``summary.json`` (atomically) and return the summary."""
    write_json(out / SUMMARY_FILE, summary)
    return summary


def write_preempted(
    out: Path, checkpoint: Checkpoint, reason: str, size: int, status: str = "preempted"
) -> dict:
    """The summary of a session stopped before the run was done (the same command resumes)."""
    summary = {
        "run": checkpoint.run,
        "trial": checkpoint.trial,
        "status": status,
        "reason": reason,
        "images_done": len(checkpoint.done),
        "images_total": checkpoint.n_events,
        "sessions": checkpoint.sessions,
        "ranks": size,
    }
    return write_summary(out, summary)
