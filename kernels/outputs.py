"""The outputs of a processed run, the same whether one process or many ranks made them:
``images.csv`` (one row per image), ``integrated.h5`` (reflections) and ``summary.json``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from kernels.funnel import FUNNEL
from kernels.io.atomic import atomic_path, write_json
from kernels.io.reflections import INTEGRATED_FILE, IntegratedImage, write_integrated
from kernels.stages.guards import run_suspect
from kernels.stages.pipeline import STAGES, ImageResult, ProcessingParams

SUMMARY_FILE = "summary.json"
IMAGES_FILE = "images.csv"


def summarise(results: list[ImageResult], wall_seconds: float, run_name: str, trial: str) -> dict:
    """Counts of the reduction funnel and per-stage timings of a processed run."""
    hits = [r for r in results if r.hit]
    passed = {stage: sum(r.status in FUNNEL[i:] for r in results) for i, stage in enumerate(FUNNEL)}
    stage_totals = {s: float(sum(r.timings.get(s, 0.0) for r in results)) for s in STAGES}
    suspect = run_suspect(results)
    summary = {
        "run": run_name,
        "trial": trial,
        "status": "complete",
        "images": len(results),
        "hits": len(hits),
        "hit_rate": len(hits) / len(results) if results else 0.0,
        "indexed": passed["indexed"],
        "refined": passed["refined"],
        "integrated": passed["integrated"],
        "spots_per_hit": float(np.mean([r.n_spots for r in hits])) if hits else 0.0,
        "reflections": int(sum(r.n_integrated for r in results if r.status == "integrated")),
        "timings": {
            "wall_seconds": wall_seconds,
            "images_per_second": len(results) / wall_seconds if wall_seconds > 0 else 0.0,
            "stage_seconds": stage_totals,
            "stage_ms_per_image": {
                s: 1e3 * t / max(len(results), 1) for s, t in stage_totals.items()
            },
        },
    }
    if suspect:  # shown by the dashboard: a run that should not be trusted as it is
        summary["suspect"] = suspect
    return summary


def write_image_table(path: Path, results: list[ImageResult]) -> None:
    """Per-image table (CSV): one row per event with its fate and stage timings."""
    rows = [r.row() for r in results]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["chunk", "event"])
        writer.writeheader()
        writer.writerows(rows)


EventTags = dict[str, list[np.ndarray]]  # tag -> its values per chunk (Run.event_tags)


def integrated_image(result: ImageResult, event_tags: EventTags | None = None) -> IntegratedImage:
    """The reflections of an integrated image with the orientation and cell they were found with,
    and its event's tags (those that are not NaN)."""
    if result.U is None or result.cell is None or result.reflections is None:
        raise ValueError(f"image {result.chunk}/{result.event} ({result.status}) is not integrated")
    tags = {
        name: float(chunks[result.chunk][result.event])
        for name, chunks in (event_tags or {}).items()
    }
    return IntegratedImage(
        result.chunk,
        result.event,
        result.wavelength,
        result.U,
        result.cell,
        result.reflections,
        {name: value for name, value in tags.items() if np.isfinite(value)},
        result.domain_size_a if result.domain_size_a > 0 else float("nan"),  # 0: not measured
        result.mosaicity_deg,
    )


def write_reflections(
    path: Path,
    results: list[ImageResult],
    run_name: str,
    trial: str,
    params: ProcessingParams,
    event_tags: EventTags | None = None,
    chunk_files: list[str] | None = None,
) -> None:
    """The run's integrated reflections (``integrated.h5``), labelled with trial and crystal,
    with the per-event tags of the run's files (``Run.event_tags``) and each image's source
    file (``chunk_files``: ``Run.chunk_files``)."""
    images = [integrated_image(r, event_tags) for r in results if r.status == "integrated"]
    attrs = {
        "run": run_name,
        "trial": trial,
        "space_group": params.crystal.symmetry().space_group,
        "cell": np.array(params.crystal.cell),
    }
    write_integrated(path, images, attrs, chunk_files)


def write_run_outputs(
    out: Path, results: list[ImageResult], wall_seconds: float, run_name: str, trial: str,
    params: ProcessingParams, event_tags: EventTags | None = None,
    chunk_files: list[str] | None = None,
) -> dict:  # fmt: skip
    """A run processed in one process: ``images.csv``, ``integrated.h5`` (with the events'
    tags and source files) and ``summary.json`` (with the trial's parameters) in ``out``;
    returns the summary."""
    summary = summarise(results, wall_seconds, run_name, trial)
    summary["params"] = params.to_dict()
    write_image_table(out / IMAGES_FILE, results)
    write_reflections(
        out / INTEGRATED_FILE, results, run_name, trial, params, event_tags, chunk_files
    )
    write_json(out / SUMMARY_FILE, summary)
    return summary
