"""Plot data of the dashboard, binned server-side so a 10 000-image run stays a small JSON.

The pages draw it in the browser with Plotly (zoom, hover); the job's own ``weather.png``
(``kernels.io.weather.plot_weather``) is unchanged.
"""

from __future__ import annotations

import numpy as np

from kernels.io.weather import Segment, dominant_spans, stage_shares

WEATHER_BINS = 300  # time bins across the run: a bar is at least 1/300 of it, ~3 px wide
BUSY_LEVELS = 4  # a bar's opacity: the share of its bins the rank was busy, in quarters
# Plotly draws 400 bars in ~20 ms, 10 000 in 0.35-0.55 s (chromium, load ~2.6): beyond this
# many, bins are merged (the weather of a run whose images alternate with idle bins)
MAX_BARS = 3000


def merged_bins(shares: np.ndarray, factor: int) -> np.ndarray:
    """Shares of ``factor`` consecutive bins merged into one (their mean)."""
    lanes, stages, bins = shares.shape
    return shares.reshape(lanes, stages, bins // factor, factor).mean(axis=3)


def weather_lanes(
    segments: list[Segment], bins: int = WEATHER_BINS, max_bars: int = MAX_BARS
) -> dict:
    """The computational weather as bars per rank: each stretch of time bins with the same
    busiest stage and busy level (``kernels.io.weather.dominant_spans``) is one bar.

    Parameters
    ----------
    segments : list of (rank, start, end, stage)
        ``ResultsDB.weather`` of a run and trial; not empty.
    bins : int
        Time bins from the first segment's start to the last one's end.
    max_bars : int
        At most this many bars: if more, the fewest merges of ``k`` bins (``k`` dividing
        ``bins``) that bring them under it (or one bin per lane).

    Returns
    -------
    dict
        ``ranks`` and ``stages`` (the lanes and the stage names), ``bin_s`` (seconds per bin),
        ``levels`` and ``bars``: ``[lane, stage, level, first bin, bins after the last]`` lists.
    """
    if not segments:
        raise ValueError("no segments: a weather plot needs at least one processed image")
    ranks = sorted({seg[0] for seg in segments})
    stages = list(dict.fromkeys(seg[3] for seg in segments))
    shares, span = stage_shares(segments, ranks, stages, bins)
    for factor in (k for k in range(1, bins + 1) if bins % k == 0):
        bars = dominant_spans(merged_bins(shares, factor), BUSY_LEVELS)
        if len(bars) <= max_bars:
            break
    return {
        "ranks": ranks,
        "stages": stages,
        "bin_s": span * factor / bins,
        "levels": BUSY_LEVELS,
        "bars": [list(bar) for bar in bars],
    }
