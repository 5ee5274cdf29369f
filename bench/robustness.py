"""Scoring a processed simulated run against its ground truth (used by bench/kernels_bench.py).

Only the outputs every version of the kernels writes are read (images.csv, integrated.h5,
summary.json, merge_stats.json), so the same scoring runs on today's code and on older code.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
from scipy.spatial import cKDTree

from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.reflections import read_integrated
from kernels.io.runformat import DETECTOR
from kernels.merging.cli import merge_results
from kernels.process import process_run
from kernels.stages.pipeline import ProcessingParams

SIGMA_BINS = (0.0, 0.9, 1.2, 1.6, 10.0)


def read_truth(exp: Path) -> dict:
    with h5py.File(exp / "truth" / "r0001.h5", "r") as f:
        truth = {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}
        truth["excited"] = {k: f["excited"][k][()] for k in f["excited"]}
    return truth


def event_of(chunk, event, chunk_size: int) -> np.ndarray:
    return np.asarray(chunk, int) * chunk_size + np.asarray(event, int)


def perturbed_run(run_dir: Path, out: Path, beam_px: float, distance_mm: float) -> Path:
    """A copy of a run whose recorded geometry is off by `beam_px` in x and y and `distance_mm`."""
    shutil.copytree(run_dir, out)
    for chunk in out.glob("*-c*[0-9].h5"):
        with h5py.File(chunk, "r+") as f:
            det = f[DETECTOR]
            geometry = json.loads(det.attrs["geometry"])
            geometry["beam_x"] += beam_px
            geometry["beam_y"] += beam_px
            geometry["distance_mm"] += distance_mm
            det.attrs["geometry"] = json.dumps(geometry)
    return out


def integration_scores(truth: dict, out: Path, chunk_size: int) -> dict:
    """Integrated per image vs true reflections with partiality >= 0.1; I/truth per spot width."""
    _, images, refl = read_integrated(out)
    ex = truth["excited"]
    events = event_of(images["chunk"], images["event"], chunk_size)
    recall, ratios, widths = [], [], []
    for i, event in enumerate(events):
        true = np.flatnonzero(ex["event"] == event)
        mine = refl["image"] == i
        if len(true) == 0 or not mine.any():
            continue
        dist, j = cKDTree(np.c_[refl["col"][mine], refl["row"][mine]]).query(
            np.c_[ex["col"][true], ex["row"][true]]
        )
        close = dist < 1.0
        recall.append(close.mean())
        strong = close & (ex["photons"][true] >= 20)
        ratios.append(refl["intensity"][mine][j[strong]] / ex["photons"][true][strong])
        widths.append(np.full(strong.sum(), truth["spot_sigma_px"][event]))
    ratio, width = np.concatenate(ratios), np.concatenate(widths)
    bins = np.digitize(width, SIGMA_BINS) - 1
    return {
        "recall": float(np.mean(recall)),
        "median_ratio_by_sigma": {
            f"{SIGMA_BINS[b]}-{SIGMA_BINS[b + 1]}": float(np.median(ratio[bins == b]))
            for b in range(len(SIGMA_BINS) - 1)
            if (bins == b).any()
        },
    }


def orientation_errors(truth: dict, out: Path, chunk_size: int) -> np.ndarray:
    attrs, images, _ = read_integrated(out)
    symmetry = CrystalSymmetry.create(attrs["cell"], attrs["space_group"])
    events = event_of(images["chunk"], images["event"], chunk_size)
    return np.array(
        [symmetry.orientation_difference_deg(U, truth["U"][e]) for e, U in zip(events, images["U"])]
    )


def score_run(exp: Path, out: Path, params: dict, chunk_size: int, run_dir=None) -> dict:
    """Process a simulated run and score it: indexing of true hits, time per hit, integration,
    orientation errors of what reached the merge, the merge and whether it was flagged."""
    summary = process_run(
        run_dir or exp / "runs" / "r0001", out, params=ProcessingParams.from_dict(params)
    )
    truth = read_truth(exp)
    with open(out / "images.csv") as f:
        rows = list(csv.DictReader(f))
    hit = truth["hit"][event_of([r["chunk"] for r in rows], [r["event"] for r in rows], chunk_size)]
    indexed = np.array([r["status"] in ("indexed", "refined", "integrated") for r in rows])
    t_index = sum(float(r["t_index"]) for r in rows if r["hit"] == "True")
    n_hits = sum(r["hit"] == "True" for r in rows)
    scores = {
        "true_hits": int(hit.sum()),
        "true_hits_indexed": float((indexed & hit).sum() / max(hit.sum(), 1)),
        "index_ms_per_hit": 1e3 * t_index / max(n_hits, 1),
        "integrated_images": summary["integrated"],
        "run_suspect": summary.get("suspect"),
        "reasons": sorted({r["reason"].split(":")[0] for r in rows if r["reason"]}),
    }
    if summary["integrated"] == 0:
        return scores
    errors = orientation_errors(truth, out, chunk_size)
    scores["orientation_error_deg"] = {
        "median": float(np.median(errors)),
        "max": float(errors.max()),
        "over_1deg": int((errors > 1.0).sum()),
    }
    if "excited" in h5py.File(exp / "truth" / "r0001.h5", "r"):
        scores.update(integration_scores(truth, out, chunk_size))
    stats = merge_results([out], out / "merged.mtz", exp / "truth" / "truth.mtz")
    scores["merged"] = {k: stats["overall"][k] for k in ("cc_truth", "cc_half", "rsplit")}
    scores["merge_suspect"] = stats.get("suspect")
    return scores
