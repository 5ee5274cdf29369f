"""``shells.png``: the merge CLI writes the per-shell plot beside every merged MTZ."""

from __future__ import annotations

import json
import math

import numpy as np
from PIL import Image

from kernels.__main__ import main as cli
from kernels.merging.shells_plot import SHELL_PANELS, shells_figure


def test_merge_writes_a_shells_png_of_its_shells(lysozyme, tmp_path):
    _, out, _ = lysozyme
    assert cli(["merge", "--results", str(out), "--out", str(tmp_path / "merged.mtz")]) == 0
    stats = json.loads((tmp_path / "merge_stats.json").read_text())
    with Image.open(tmp_path / "shells.png") as png:
        assert png.format == "PNG" and png.size == (1100, 320)
        assert png.text["Description"] == f"{len(stats['shells'])} shells"
        pixels = np.asarray(png.convert("L"))
    assert pixels.std() > 10  # drawn, not blank

    fig = shells_figure(stats["shells"])
    for ax, (key, label) in zip(fig.axes, SHELL_PANELS, strict=True):
        (line,) = ax.get_lines()
        expected = [s[key] if s[key] is not None else math.nan for s in stats["shells"]]
        np.testing.assert_allclose(line.get_ydata(), expected)
        np.testing.assert_allclose(line.get_xdata(), [s["d_min"] ** -2 for s in stats["shells"]])
        assert ax.get_title() == label
    assert len(stats["shells"]) == 10


def test_shells_with_missing_values_are_gaps():
    shells = [
        {"d_min": 3.0, "completeness": 1.0, "cc_half": 0.9, "mean_i_over_sigma": 5.0},
        {"d_min": 2.0, "completeness": 0.5, "cc_half": None, "mean_i_over_sigma": 1.0},
    ]
    fig = shells_figure(shells)
    cc = fig.axes[1].get_lines()[0].get_ydata()
    assert cc[0] == 0.9 and math.isnan(cc[1])
