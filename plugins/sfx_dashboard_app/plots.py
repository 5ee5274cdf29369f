"""PNG plots of the dashboard, rendered server-side with matplotlib (Agg)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from kernels.io.weather import Segment, plot_weather
from kernels.merging.shells_plot import save_figure, shells_figure


def weather_png(segments: list[Segment], title: str) -> bytes:
    """The computational weather plot (kernels.io.weather) of one run and trial as PNG bytes."""
    with tempfile.TemporaryDirectory(prefix="sfx-weather-") as tmp:
        return plot_weather(segments, Path(tmp) / "weather.png", title=title).read_bytes()


def shells_png(shells: list[dict], title: str) -> bytes:
    """The per-shell plot (kernels.merging.shells_plot) of merged statistics as PNG bytes."""
    buffer = io.BytesIO()
    save_figure(shells_figure(shells, title), buffer, dpi=90)
    return buffer.getvalue()
