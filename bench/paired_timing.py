"""Per-hit time of indexing and integration, today's chain beside the chain before issue 20.

"Before" is today's code with the trial parameters that switch issue 20's additions off:
``indexing.fallback_spots = 0`` (no second indexing pass: the first search is the old code) and
``integration.adaptive = 0`` (the fixed 3 px disc and the trial's partiality model). Its one
remaining extra, the wording of an indexing failure (`failure_reason`, computed only on
failures), is timed separately and taken off. Both chains process the same frames, image by
image in alternating order, `repeats` times; per image the median of each is kept, so the load
of a shared machine hits both alike.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from kernels.crystal.geometry import pixel_to_s
from kernels.io.runformat import open_run
from kernels.stages.calibration import load_calibration
from kernels.stages.indexing import failure_reason
from kernels.stages.pipeline import ProcessingParams, Processor

BEFORE = {"indexing": {"fallback_spots": 0}, "integration": {"adaptive": 0}}


def with_section(trial: dict, extra: dict) -> dict:
    """`trial` with the sections of `extra` merged in."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in trial.items()}
    for section, values in extra.items():
        merged.setdefault(section, {}).update(values)
    return merged


def reason_seconds(processor: Processor, result) -> float:
    """Seconds the failure wording of a hit that `processor` did not index costs."""
    if not result.reason.startswith("not indexed: target cell"):
        return 0.0
    plan, spots = processor.indexing_plan, result.spots
    s = pixel_to_s(spots.col, spots.row, result.wavelength, processor.geometry)
    needed = max(plan.params.min_indexed, int(np.ceil(plan.params.min_indexed_fraction * len(s))))
    started = time.perf_counter()
    failure_reason(s, plan, 0, needed)
    return time.perf_counter() - started


def stage_seconds(processor: Processor, frame, wavelength: float, subtract_reason: bool):
    """(index, integrate) seconds of one frame and its result."""
    result = processor.process(frame, wavelength=wavelength)
    index = result.timings.get("index", 0.0)
    if subtract_reason:
        index -= reason_seconds(processor, result)
    return index, result.timings.get("integrate", 0.0), result


def paired_times(exp: Path, trial: dict, repeats: int = 3) -> dict:
    """Per-hit ms of indexing and per-integrated-image ms of integration (medians per image)
    of the chain before issue 20 and today's, on the hits of run r0001 of `exp` (see the module
    docstring), with the images indexed and integrated and the reflections integrated."""
    params = {
        "before": ProcessingParams.from_dict(with_section(trial, BEFORE)),
        "ours": ProcessingParams.from_dict(trial),
    }
    with open_run(exp / "runs" / "r0001") as run:
        calib = load_calibration(exp / "calib" / "calibration.h5", run.geometry.shape)
        chains = {k: Processor(calib, run.geometry, p) for k, p in params.items()}
        frames = [(run.read_frame(c, e), run.wavelength(c, e)) for c, e in run.events]
    hits = [(f, w) for f, w in frames if chains["ours"].process(f).hit]
    times = {k: np.zeros((repeats, len(hits), 2)) for k in chains}
    counts = {k: np.zeros(3, int) for k in chains}  # indexed, integrated, reflections
    for rep in range(repeats):
        for i, (frame, wavelength) in enumerate(hits):
            for name in sorted(chains, reverse=bool((rep + i) % 2)):
                index, integrate, result = stage_seconds(
                    chains[name], frame, wavelength, name == "before"
                )
                times[name][rep, i] = index, integrate
                if rep == 0:
                    counts[name] += (
                        result.status in ("indexed", "refined", "integrated"),
                        result.status == "integrated",
                        result.n_integrated,
                    )
    out: dict = {"hits": len(hits)}
    for name, t in times.items():
        index_s, integrate_s = np.median(t, axis=0).sum(axis=0)
        indexed, integrated, reflections = (int(c) for c in counts[name])
        out[name] = {
            "index_ms_per_hit": 1e3 * index_s / max(len(hits), 1),
            "integrate_ms_per_image": 1e3 * integrate_s / max(integrated, 1),
            "integrate_us_per_reflection": 1e6 * integrate_s / max(reflections, 1),
            "indexed": indexed,
            "integrated": integrated,
            "reflections": reflections,
        }
    return out
