"""Computational weather: what every rank was doing when, drawn as rank × time by stage."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

Segment = tuple[int, float, float, str]  # (rank, start, end, stage), UNIX seconds

WIDTH_IN, DPI, LEFT, RIGHT = 10, 100, 0.06, 0.98  # the figure and its axes' fixed margins
# one time bin per pixel column of the axes: the lanes are drawn without resampling, so no
# column (no short stage) is dropped or smeared
TIME_BINS = round((RIGHT - LEFT) * WIDTH_IN * DPI)
LANE_ROWS, LANE_FILLED = 10, 8  # a lane is 10 image rows, 8 coloured: bars 0.8 of a lane high


def stage_segments(rank: int, t_start: float, timings: dict) -> list[Segment]:
    """Segments of one image: its stages ran back to back from ``t_start`` in dict order."""
    segments = []
    for stage, seconds in timings.items():
        segments.append((int(rank), t_start, t_start + seconds, str(stage)))
        t_start += seconds
    return segments


def segments_from_rows(rows: Iterable) -> list[Segment]:
    """Segments of image rows carrying ``rank``, ``t_start`` and ``timings`` (e.g. ImageRow)."""
    return [seg for row in rows for seg in stage_segments(row.rank, row.t_start, row.timings)]


def busy_time(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Seconds covered by the intervals [start, end) in each bin between consecutive ``edges``.

    Exact and O((n + bins) log n): the covered time up to t is Σ max(0, t − start) −
    Σ max(0, t − end), each sum read off sorted bounds and their cumulative sums.
    """

    def ramp_sum(bounds: np.ndarray) -> np.ndarray:
        bounds = np.sort(bounds)
        below = np.searchsorted(bounds, edges)
        cumulative = np.concatenate(([0.0], np.cumsum(bounds)))
        return below * edges - cumulative[below]

    return np.diff(ramp_sum(starts) - ramp_sum(ends))


def stage_shares(segments: list[Segment], ranks: list[int], stages: list[str], bins: int):
    """Share of each time bin each stage fills on each rank, and the seconds the bins span.

    Returns
    -------
    shares : numpy.ndarray
        (ranks, stages, bins), from the first segment's start; a bin's shares sum to at most 1
        (overlaps never overfill it), the rest is idle time.
    span : float
        Seconds from the first segment's start to the last one's end.
    """
    rank, start, end, stage = zip(*segments)
    lane_of, stage_of = {r: i for i, r in enumerate(ranks)}, {s: i for i, s in enumerate(stages)}
    group = np.fromiter((lane_of[r] * len(stages) + stage_of[s] for r, s in zip(rank, stage)), int)
    t0 = min(start)
    start, end = np.asarray(start) - t0, np.asarray(end) - t0
    span = float(end.max()) or 1.0
    edges = np.linspace(0.0, span, bins + 1)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(ranks) * len(stages) + 1))
    shares = np.zeros((len(ranks), len(stages), bins))
    for g in range(len(ranks) * len(stages)):
        mine = order[bounds[g] : bounds[g + 1]]
        if len(mine):
            shares[divmod(g, len(stages))] = busy_time(start[mine], end[mine], edges)
    shares /= np.diff(edges)
    shares /= np.maximum(shares.sum(axis=1, keepdims=True), 1.0)
    return shares, span


def weather_image(segments: list[Segment], ranks: list[int], stages: list[str], colours):
    """RGB image (lanes × LANE_ROWS, TIME_BINS, 3) of the lanes from the first segment's start,
    and the seconds it spans.

    Each bin's colour is the mix of the stages by the share of the bin they fill, white for
    idle time: what an ideal anti-aliased drawing of every bar shows, computed in numpy instead
    of one patch per bar.
    """
    shares, span = stage_shares(segments, ranks, stages, TIME_BINS)
    ink = 1.0 - np.asarray([colours[s][:3] for s in stages])
    lanes = 1.0 - np.einsum("lsb,sc->lbc", shares, ink)
    image = np.ones((len(ranks), LANE_ROWS, TIME_BINS, 3))
    gap = (LANE_ROWS - LANE_FILLED) // 2
    image[:, gap : gap + LANE_FILLED] = lanes[:, None]
    return (image.reshape(-1, TIME_BINS, 3) * 255).astype(np.uint8), span


def dominant_spans(shares: np.ndarray, levels: int = 4) -> list[tuple[int, int, int, int, int]]:
    """The lanes as bars: consecutive bins of a rank with the same busiest stage and the same
    busy level.

    A bin's stage is the one filling most of it; its level is the share of the bin any stage
    fills, rounded up to ``1/levels`` (so a bin barely used stays visible and a mostly idle
    rank looks faint, as in :func:`weather_image`'s colour mix). Regular work merges into few
    long bars; bins no stage touches are left out.

    Returns
    -------
    list of (lane, stage, level 1..levels, first bin, bins after the last)
        In lane then time order.
    """
    lanes, _, bins = shares.shape
    level = np.ceil(shares.sum(axis=1) * levels - 1e-9).clip(0, levels).astype(int)
    key = np.where(level > 0, np.argmax(shares, axis=1) * (levels + 1) + level, -1)
    change = np.ones((lanes, bins + 1), bool)
    change[:, 1:bins] = key[:, 1:] != key[:, :-1]
    spans = []
    for lane in range(lanes):
        cuts = np.flatnonzero(change[lane])
        for a, b in zip(cuts[:-1], cuts[1:]):
            if key[lane, a] >= 0:
                stage, busy = divmod(int(key[lane, a]), levels + 1)
                spans.append((lane, stage, busy, int(a), int(b)))
    return spans


def weather_figure(segments: list[Segment], title: str = ""):
    """A matplotlib figure of ranks (rows) against time since the first image, by stage.

    One horizontal lane per rank that processed an image; the legend names every stage. The
    lanes are one image (:func:`weather_image`), so a 10 000-image run (60 000 bars) draws in
    well under a second where a patch per bar took seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ranks = sorted({seg[0] for seg in segments})
    stages = list(dict.fromkeys(seg[3] for seg in segments))
    colours = {stage: plt.get_cmap("tab10")(i % 10) for i, stage in enumerate(stages)}
    image, span = weather_image(segments, ranks, stages, colours) if segments else (None, 1.0)
    # fixed margins in inches (not constrained layout, which draws the figure once more per
    # pass): room for the legend and title above the lanes whatever the number of ranks
    height = 1.5 + 0.35 * max(len(ranks), 1)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    fig.subplots_adjust(left=LEFT, right=RIGHT, bottom=0.5 / height, top=1 - 0.75 / height)
    if image is not None:
        ax.imshow(
            image,
            extent=(0.0, span, len(ranks) - 0.5, -0.5),
            aspect="auto",
            interpolation="none",  # no resampling pass: a third of the drawing time
        )
    ax.set_yticks(range(len(ranks)), [str(r) for r in ranks])
    ax.set_ylim(-0.6, len(ranks) - 0.4)
    ax.set_xlim(0.0, span)
    ax.set_xlabel("seconds since the first image")
    ax.set_ylabel("rank")
    ax.set_title(title or "computational weather")
    fig.legend(
        handles=[Patch(color=colours[s], label=s) for s in stages],
        loc="upper center",
        ncols=max(len(stages), 1),
        fontsize="small",
        frameon=False,
    )
    return fig


def plot_weather(segments: list[Segment], path, title: str = "") -> Path:
    """Write :func:`weather_figure` as a PNG; returns the path written."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = weather_figure(segments, title)
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})  # zlib time, not size, counts
    plt.close(fig)
    return path
