"""PNG plots of the dashboard, rendered server-side with matplotlib (Agg)."""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kernels.io.weather import Segment, plot_weather  # noqa: E402

SHELL_PANELS = (
    ("completeness", "completeness"),
    ("cc_half", "CC½"),
    ("mean_i_over_sigma", "⟨I/σ⟩"),
)


def weather_png(segments: list[Segment], title: str) -> bytes:
    """The computational weather plot (kernels.io.weather) of one run and trial as PNG bytes."""
    with tempfile.TemporaryDirectory(prefix="sfx-weather-") as tmp:
        return plot_weather(segments, Path(tmp) / "weather.png", title=title).read_bytes()


def _finite(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def shells_png(shells: list[dict], title: str) -> bytes:
    """Completeness, CC½ and ⟨I/σ⟩ against resolution (Å, one point per shell) as PNG bytes.

    Shells are placed at 1/d² of their high-resolution edge, labelled in Å; values that are
    missing or not finite (e.g. CC½ of a shell with under 3 pairs) leave a gap.
    """
    x = [1.0 / _finite(shell.get("d_min")) ** 2 for shell in shells]
    fig, axes = plt.subplots(1, len(SHELL_PANELS), figsize=(11, 3.2))
    for ax, (key, label) in zip(axes, SHELL_PANELS):
        ax.plot(x, [_finite(shell.get(key)) for shell in shells], "o-")
        ax.set_title(label)
        ax.set_xlabel("resolution (Å)")
        ticks = [v for v in x if math.isfinite(v)]
        ax.set_xticks(ticks, [f"{v**-0.5:.2f}" for v in ticks], rotation=60, fontsize="small")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
