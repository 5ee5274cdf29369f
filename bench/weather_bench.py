"""Weather plot speed: a 10 000-image run (64 ranks, six stages: 60 000 bars) as the job's PNG
(``kernels.io.weather.plot_weather``: the lanes as one numpy image) and as the dashboard's JSON
(``plots.weather_lanes`` encoded, what ``/api/runs/{id}/weather`` sends for Plotly) beside the
baseline (one matplotlib patch per bar, ``broken_barh``, as before), median and max of
``--repeats`` in one process (matplotlib already imported, as in the api-server), beside the
1 s goal.

    .venv/bin/python bench/weather_bench.py [--images 10000] [--ranks 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kernels.io.weather import Segment, plot_weather, stage_segments  # noqa: E402
from plugins.sfx_dashboard_app.plots import weather_lanes  # noqa: E402

TIMINGS = {
    "read": 0.0011,
    "calibrate": 0.0043,
    "spotfind": 0.0071,
    "index": 0.0052,
    "refine": 0.0011,
    "integrate": 0.0019,
}  # fmt: skip  (the dashboard bench's rows)
GOAL_S = 1.0


def run_segments(images: int, ranks: int) -> list[Segment]:
    """The dashboard bench's run: an image every 1/120 s, dealt round the ranks."""
    return [s for e in range(images) for s in stage_segments(e % ranks, 1e9 + e / 120, TIMINGS)]


def baseline_png(segments: list[Segment], title: str) -> bytes:
    """The plot as it was drawn before: one ``broken_barh`` per rank and stage."""
    ranks = sorted({seg[0] for seg in segments})
    stages = list(dict.fromkeys(seg[3] for seg in segments))
    t0 = min(seg[1] for seg in segments)
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.35 * len(ranks)), layout="constrained")
    for lane, rank in enumerate(ranks):
        mine = [seg for seg in segments if seg[0] == rank]
        for i, stage in enumerate(stages):
            bars = [(a - t0, b - a) for _, a, b, s in mine if s == stage]
            ax.broken_barh(bars, (lane - 0.4, 0.8), facecolors=plt.get_cmap("tab10")(i))
    ax.set_title(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def job_png(segments: list[Segment], title: str) -> bytes:
    """The job's ``weather.png``, as ``process_run`` writes it."""
    with tempfile.TemporaryDirectory(prefix="weather-bench-") as tmp:
        return plot_weather(segments, Path(tmp) / "weather.png", title=title).read_bytes()


def dashboard_json(segments: list[Segment], title: str) -> bytes:
    """What ``/api/runs/{id}/weather`` sends (the title is the page's, not the data's)."""
    return json.dumps(weather_lanes(segments), separators=(",", ":")).encode()  # as JSONResponse


def seconds_to_png(make_png, segments: list[Segment], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` PNGs of the segments."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        make_png(segments, "r0001: computational weather")
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--ranks", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    segments = run_segments(args.images, args.ranks)
    seconds_to_png(job_png, segments[:60], 1)  # warm up fonts and the Agg backend
    print(f"weather of {args.images} images x {args.ranks} ranks ({len(segments)} bars), "
          f"{args.repeats} repeats; goal {GOAL_S} s; load {os.getloadavg()}")  # fmt: skip
    makers = (("baseline PNG (patch per bar)", baseline_png), ("job PNG (one image)", job_png),
              ("dashboard JSON (binned bars)", dashboard_json))  # fmt: skip
    for name, make in makers:
        times = seconds_to_png(make, segments, args.repeats)
        size = len(make(segments, "r0001: computational weather")) / 1e3
        print(f"  {name:30s} median {statistics.median(times):6.3f} s  max {max(times):6.3f} s"
              f"  {size:7.0f} kB")  # fmt: skip


if __name__ == "__main__":
    main()
