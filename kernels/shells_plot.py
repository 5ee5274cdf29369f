"""Per-shell quality of a merge: completeness, CC1/2 and mean I/sigma against resolution."""

from __future__ import annotations

from pathlib import Path

SHELL_PANELS = (
    ("completeness", "completeness"),
    ("cc_half", "CC1/2"),
    ("mean_i_over_sigma", "<I/sigma>"),
)
PNG_FILE = "shells.png"


def shell_series(stats: dict) -> tuple[list[float], dict[str, list[float]]]:
    """Each shell's resolution (Angstrom, its high-resolution edge) and value of every panel.

    Missing values (None or NaN, e.g. CC1/2 of a sparse shell) become NaN: a gap in the line.
    """
    shells = stats.get("shells", [])
    nan = float("nan")

    def value(shell: dict, key: str) -> float:
        v = shell.get(key)
        return float(v) if isinstance(v, (int, float)) else nan

    d_min = [value(shell, "d_min") for shell in shells]
    return d_min, {key: [value(shell, key) for shell in shells] for key, _ in SHELL_PANELS}


def shells_figure(stats: dict, title: str = ""):
    """A matplotlib figure of the merge's shells: one panel per statistic, x = 1/d^2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d_min, series = shell_series(stats)
    x = [1.0 / d**2 if d > 0 else float("nan") for d in d_min]
    fig, axes = plt.subplots(1, len(SHELL_PANELS), figsize=(11, 3.2))
    for ax, (key, label) in zip(axes, SHELL_PANELS, strict=True):
        ax.plot(x, series[key], marker="o")
        ax.set_ylabel(label)
        ax.set_xlabel("resolution (A)")
        ticks = x[:: max(len(x) // 5, 1)]
        ax.set_xticks(ticks, [f"{1 / t**0.5:.1f}" for t in ticks])
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1.05)
    fig.suptitle(title or f"{len(d_min)} resolution shells")
    fig.tight_layout()
    return fig


def plot_shells(stats: dict, path, title: str = "") -> Path:
    """Write the per-shell plot of merge statistics (``merge_stats.json`` content) as a PNG."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = shells_figure(stats, title)
    fig.savefig(path, dpi=100, metadata={"Description": f"{len(stats.get('shells', []))} shells"})
    plt.close(fig)
    return path
