"""Computational weather: what every rank was doing when, drawn as rank × time by stage."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

Segment = tuple[int, float, float, str]  # (rank, start, end, stage), UNIX seconds


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


def weather_figure(segments: list[Segment], title: str = ""):
    """A matplotlib figure of ranks (rows) against time since the first image, by stage.

    One horizontal lane per rank that processed an image; the legend names every stage.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ranks = sorted({seg[0] for seg in segments})
    stages = list(dict.fromkeys(seg[3] for seg in segments))
    colours = {stage: plt.get_cmap("tab10")(i % 10) for i, stage in enumerate(stages)}
    t0 = min((seg[1] for seg in segments), default=0.0)
    # constrained layout reserves room for the legend above the lanes, so every stage's entry
    # fits whatever the number of ranks (beside a 2-rank plot it was clipped)
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.35 * max(len(ranks), 1)), layout="constrained")
    for lane, rank in enumerate(ranks):
        mine = [seg for seg in segments if seg[0] == rank]
        for stage in stages:
            bars = [(start - t0, end - start) for _, start, end, s in mine if s == stage]
            if bars:
                ax.broken_barh(bars, (lane - 0.4, 0.8), facecolors=colours[stage])
    ax.set_yticks(range(len(ranks)), [str(r) for r in ranks])
    ax.set_ylim(-0.6, len(ranks) - 0.4)
    ax.set_xlabel("seconds since the first image")
    ax.set_ylabel("rank")
    ax.set_title(title or "computational weather")
    fig.legend(
        handles=[Patch(color=colours[s], label=s) for s in stages],
        loc="outside upper center",
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
