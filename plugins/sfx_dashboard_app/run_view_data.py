"""The run view's numbers, computed from a run's per-image rows: pure functions, no DB.

Rates are rolling means over a window of images in acquisition order (every image, summed
in the DB in buckets of a tenth of the window); the
per-frame series come thinned (every k-th event, at most about ``MAX_POINTS``) and the cells
only of refined images, so a 10 000-image run stays a light page and a short query.
"""

from __future__ import annotations

import re

import numpy as np

from kernels.resultsdb.images import CELL_COLUMNS
from operators.pipeline.state import state_words

FRAME_COLUMNS = ("chunk", "event", "t_acquired", "hit", "n_spots", "n_saturated", "d_est")
MAX_POINTS = 2000
CELL_BINS = 40
STALL_SECONDS = 600.0  # no image logged for this long while not merged: the run is stalled
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def columns_of(rows: list[tuple], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Rows as one float array per named column."""
    if not rows:
        return {c: np.zeros(0) for c in names}
    return dict(zip(names, np.asarray(rows, dtype=float).T))


def rolling_window(n: int) -> int:
    """Images per rolling window: 1/20 of the run, at least 10 and at most 500."""
    return int(min(500, max(10, n // 20)))


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of each run of ``window`` consecutive values (shorter series: the whole mean)."""
    if len(values) <= window:
        return np.full(min(len(values), 1), values.mean() if len(values) else 0.0)
    csum = np.concatenate(([0.0], np.cumsum(values)))
    return (csum[window:] - csum[:-window]) / window


def thinning(n: int) -> int:
    """k such that every k-th of ``n`` points is at most ``MAX_POINTS`` of them."""
    return max(1, -(-n // MAX_POINTS))


def acquisition_axis(t: np.ndarray, t0: float) -> tuple[np.ndarray, str]:
    """The x axis: seconds since the run's first frame ``t0``, or the image number when the
    rows carry no acquisition time (logged before it was stored)."""
    if len(t) and t0 > 0 and (t > 0).all():
        return t - t0, "acquisition time (s)"
    return np.arange(len(t), dtype=float), "image (acquisition order)"


def bucket_size(window: int) -> int:
    """Images per bucket the DB sums: a tenth of the rolling window."""
    return max(1, window // 10)


def rates(buckets: list[tuple], window: int, t0: float) -> dict:
    """Rolling hit rate and indexing rate (of all images) against acquisition time, from the
    DB's bucket sums ``(images, hits, indexed, first t_acquired)`` of ``bucket_size(window)``
    images each: a window is ``window // size`` consecutive buckets."""
    cols = columns_of(buckets, ("n", "hits", "indexed", "t_acquired"))
    x, label = acquisition_axis(cols["t_acquired"], t0)
    span = max(1, window // bucket_size(window))
    n = rolling_mean(cols["n"], span)
    with np.errstate(invalid="ignore", divide="ignore"):
        hit, indexed = rolling_mean(cols["hits"], span) / n, rolling_mean(cols["indexed"], span) / n
    centre = rolling_mean(x, span) if len(x) > span else x[:1]
    keep = np.arange(0, len(centre), thinning(len(centre)))
    return {
        "x_label": label,
        "window": window,
        "x": centre[keep].tolist(),
        "hit_rate": np.nan_to_num(hit[keep]).tolist(),
        "indexing_rate": np.nan_to_num(indexed[keep]).tolist(),
    }


def per_frame(cols: dict[str, np.ndarray], t0: float) -> dict:
    """Spots, estimated resolution (hits only) and saturated pixels of the thinned frames."""
    x, label = acquisition_axis(cols["t_acquired"], t0)
    hits = (cols["hit"] > 0) & (cols["d_est"] > 0)
    return {
        "x_label": label,
        "x": x.tolist(),
        "event": [f"{int(c)}:{int(e)}" for c, e in zip(cols["chunk"], cols["event"])],
        "n_spots": cols["n_spots"].astype(int).tolist(),
        "n_saturated": cols["n_saturated"].astype(int).tolist(),
        "d_x": x[hits].tolist(),
        "d_est": cols["d_est"][hits].tolist(),
    }


def cell_histograms(cols: dict[str, np.ndarray]) -> dict:
    """Histogram of each refined cell parameter."""
    out: dict = {"n": len(cols["cell_a"])}
    for c in CELL_COLUMNS:
        values = cols[c]
        if not len(values):
            out[c] = {"edges": [], "counts": []}
            continue
        lo, hi = np.percentile(values, [0.5, 99.5])
        span = max(hi - lo, 1e-3 * max(abs(hi), 1.0))  # one cell: still a visible bar
        counts, edges = np.histogram(values, CELL_BINS, (lo - span / 4, hi + span / 4))
        out[c] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return out


def reason_class(status: str, reason: str) -> str:
    """Why an image stopped, with its numbers masked so alike reasons count together."""
    return NUMBER.sub("#", reason) if reason else f"{status}: went all the way"


def funnel_by_reason(reasons: list[tuple]) -> list[dict]:
    """How many images stopped for each reason (``(status, reason, images, ...)`` rows),
    most frequent first."""
    counts: dict[str, int] = {}
    for status, reason, n, *_ in reasons:
        key = reason_class(status, reason)
        counts[key] = counts.get(key, 0) + n
    return [{"reason": r, "images": n} for r, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def run_state(
    record: dict | None,
    concluded,
    merged: bool,
    last_image: float | None,
    now: float,
    images: int = 0,
) -> dict:
    """acquiring / analysing / merged / stalled / waiting / failed, with what explains it.

    ``record`` is the stored pipeline state; ``concluded`` the run's end time (None while the
    DAQ still writes); ``last_image`` when the newest image row was processed; ``images`` the
    image rows logged so far (the detail says "processing n/N").
    """
    state = (record or {}).get("state")
    detail = (record or {}).get("detail") or ""
    if state == "failed":
        return {"state": "failed", "detail": detail}
    if state == "published" or (merged and state is None):
        return {"state": "merged", "detail": ""}
    if state == "waiting":
        return {"state": "waiting for the facility", "detail": detail}
    if last_image is not None and now - last_image > STALL_SECONDS:
        quiet = f"no image logged for {now - last_image:.0f} s"
        return {"state": "stalled", "detail": quiet + (f" ({state})" if state else "")}
    words = state_words(record, images) if state else ""
    if concluded is None:
        return {"state": "acquiring", "detail": words}
    return {"state": "analysing", "detail": words}


def run_view(
    images: int, buckets: list[tuple], frame_rows: list[tuple], cell_rows: list[tuple], reasons
) -> dict:
    """Every per-image plot of the run view: the bucket sums (``bucket_size`` of the rolling
    window of ``images``), ``FRAME_COLUMNS`` rows of the thinned frames, ``CELL_COLUMNS`` rows
    of the refined ones, and the counted reasons."""
    t = np.asarray([b[3] for b in buckets], dtype=float)
    t0 = float(t.min()) if len(t) else 0.0
    return {
        "images": images,
        "rates": rates(buckets, rolling_window(images), t0),
        "frames": per_frame(columns_of(frame_rows, FRAME_COLUMNS), t0),
        "cells": cell_histograms(columns_of(cell_rows, CELL_COLUMNS)),
        "reasons": funnel_by_reason(reasons),
    }
