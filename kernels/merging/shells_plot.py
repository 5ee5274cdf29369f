"""Per-shell quality of a merge: completeness, CC½ and ⟨I/σ⟩ against resolution.

One figure for both the merge CLI (``shells.png`` beside every merged MTZ) and the dashboard.
"""

from __future__ import annotations

import math
from pathlib import Path

SHELL_PANELS = (
    ("completeness", "completeness"),
    ("cc_half", "CC½"),
    ("mean_i_over_sigma", "⟨I/σ⟩"),
)
PNG_FILE = "shells.png"


def _finite(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def shells_figure(shells: list[dict], title: str = ""):
    """A matplotlib figure of the shells (``merge_stats.json``'s ``shells``), a panel per statistic.

    Shells are placed at 1/d² of their high-resolution edge, labelled in Å; values that are
    missing or not finite (e.g. CC½ of a shell with under 3 pairs) leave a gap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [1.0 / _finite(shell.get("d_min")) ** 2 for shell in shells]
    fig, axes = plt.subplots(1, len(SHELL_PANELS), figsize=(11, 3.2))
    for ax, (key, label) in zip(axes, SHELL_PANELS, strict=True):
        ax.plot(x, [_finite(shell.get(key)) for shell in shells], "o-")
        ax.set_title(label)
        ax.set_xlabel("resolution (Å)")
        ticks = [v for v in x if math.isfinite(v)]
        ax.set_xticks(ticks, [f"{v**-0.5:.2f}" for v in ticks], rotation=60, fontsize="small")
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"{len(shells)} resolution shells")
    fig.tight_layout()
    return fig


def save_figure(fig, target, dpi: int = 100, description: str = "") -> None:
    """Write `fig` as PNG to a path or binary file object and close it."""
    import matplotlib.pyplot as plt

    fig.savefig(target, format="png", dpi=dpi, metadata={"Description": description})
    plt.close(fig)


def plot_shells(stats: dict, path, title: str = "") -> Path:
    """Write the per-shell plot of merge statistics (``merge_stats.json`` content) as a PNG."""
    path = Path(path)
    shells = stats.get("shells", [])
    save_figure(shells_figure(shells, title), path, description=f"{len(shells)} shells")
    return path
