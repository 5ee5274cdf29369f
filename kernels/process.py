"""``python -m kernels process``: run the per-image chain over a whole run (one process)."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from kernels.atomic_io import write_json
from kernels.calibration import load_calibration
from kernels.funnel import FUNNEL
from kernels.pipeline import STAGES, ImageResult, ProcessingParams, Processor
from kernels.reflections import INTEGRATED_FILE, IntegratedImage, write_integrated
from kernels.runformat import open_run


def default_calibration(run_dir: Path) -> Path:
    """The run's own calibration snapshot if it has one, else ``<exp>/calib/calibration.h5``."""
    own = Path(run_dir) / "calibration.h5"
    return (
        own if own.exists() else Path(run_dir).resolve().parent.parent / "calib" / "calibration.h5"
    )


def load_params(path) -> ProcessingParams:
    """Trial parameters from a JSON file (absent -> defaults)."""
    if path is None:
        return ProcessingParams()
    try:
        return ProcessingParams.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: invalid parameters: {exc}") from None


def summarise(results: list[ImageResult], wall_seconds: float, run_name: str, trial: str) -> dict:
    """Counts of the reduction funnel and per-stage timings of a processed run."""
    hits = [r for r in results if r.hit]
    passed = {stage: sum(r.status in FUNNEL[i:] for r in results) for i, stage in enumerate(FUNNEL)}
    stage_totals = {s: float(sum(r.timings.get(s, 0.0) for r in results)) for s in STAGES}
    return {
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


def write_image_table(path: Path, results: list[ImageResult]) -> None:
    """Per-image table (CSV): one row per event with its fate and stage timings."""
    rows = [r.row() for r in results]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["chunk", "event"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def write_reflections(
    path: Path, results: list[ImageResult], run_name: str, trial: str, params: ProcessingParams
) -> None:
    """The run's integrated reflections (``integrated.h5``), labelled with trial and crystal."""
    images = [
        IntegratedImage(r.chunk, r.event, r.wavelength, r.U, r.cell, r.reflections)
        for r in results
        if r.status == "integrated"
    ]
    attrs = {
        "run": run_name,
        "trial": trial,
        "space_group": params.crystal.symmetry().space_group,
        "cell": np.array(params.crystal.cell),
    }
    write_integrated(path, images, attrs)


def process_run(
    run_dir,
    out_dir,
    calib_path=None,
    params: ProcessingParams = ProcessingParams(),
    trial: str = "default",
) -> dict:
    """Process every event of a run in this process; write images.csv and summary.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open_run(run_dir) as run:
        calib = load_calibration(calib_path or default_calibration(run.dir), run.geometry.shape)
        processor = Processor(calib, run.geometry, params)
        results = []
        for c, e in run.events:
            r = processor.process(
                run.read_frame(c, e),
                c,
                e,
                float(run.chunks[c].timestamps[e]),
                wavelength=run.wavelength(c, e),
            )
            results.append(r)
        name = run.name
    summary = summarise(results, time.perf_counter() - started, name, trial)
    summary["params"] = params.to_dict()
    write_image_table(out / "images.csv", results)
    write_reflections(out / INTEGRATED_FILE, results, name, trial, params)
    write_json(out / "summary.json", summary)
    return summary


def main(args) -> int:
    from kernels.mpi_driver import mpi_launched, run_mpi

    if getattr(args, "db", None) or mpi_launched():
        return run_mpi(args)
    summary = process_run(args.run, args.out, args.calib, load_params(args.params), args.trial)
    t = summary["timings"]
    print(
        f"{summary['run']}: {summary['images']} images, {summary['hits']} hits "
        f"({summary['spots_per_hit']:.0f} spots/hit), {summary['indexed']} indexed, "
        f"{summary['refined']} refined, {summary['integrated']} integrated in {t['wall_seconds']:.1f} s "
        f"({t['images_per_second']:.1f} images/s) -> {Path(args.out) / 'summary.json'}"
    )
    return 0
