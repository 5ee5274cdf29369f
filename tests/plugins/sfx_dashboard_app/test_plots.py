"""The weather's bars for the browser: binned, bounded in number, covering the run."""

from __future__ import annotations

import pytest

from kernels.io.weather import stage_segments
from plugins.sfx_dashboard_app.plots import weather_lanes


def one_rank_run(busy_s: float, images: int = 600) -> list:
    """One rank, an image every second taking ``busy_s`` of it."""
    return [seg for e in range(images) for seg in stage_segments(0, e * 1.0, {"spot": busy_s})]


def test_bars_cover_the_run_at_full_resolution_when_few():
    weather = weather_lanes(one_rank_run(0.2), bins=300)  # ~2 s bins: every bin 10 % busy
    assert weather["ranks"] == [0] and weather["stages"] == ["spot"]
    assert weather["bars"] == [[0, 0, 1, 0, 300]]  # one faint bar: level 1 of 4
    assert weather["bin_s"] == pytest.approx(599.2 / 300)


def test_too_many_bars_merge_bins_until_they_fit():
    run = one_rank_run(0.5)  # 599.5 s: at 1199 bins of 0.5 s, busy and idle bins alternate
    many = weather_lanes(run, bins=1199, max_bars=10_000)
    assert len(many["bars"]) == 600  # one per image
    few = weather_lanes(run, bins=1199, max_bars=100)
    assert 1 <= len(few["bars"]) <= 100
    bins = round(599.5 / few["bin_s"])
    assert bins in (109, 11) and few["bars"][-1][-1] == bins  # 11 or 109 merged: still the run
