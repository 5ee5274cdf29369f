"""Checkpoint files detect corruption; the weather plot has one lane per rank."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from kernels.io.checkpoint import Checkpoint, CheckpointError, read_checkpoint, write_checkpoint
from kernels.io.weather import (
    LANE_ROWS,
    TIME_BINS,
    busy_time,
    dominant_spans,
    plot_weather,
    stage_segments,
    stage_shares,
    weather_figure,
    weather_image,
)


def sample() -> Checkpoint:
    return Checkpoint(
        "r0001",
        "default",
        "ab" * 32,
        10,
        done={(0, 1), (1, 3)},
        parts=["parts/a.pkl"],
        logged=False,
        sessions=2,
    )


def test_roundtrip_and_missing(tmp_path):
    path = tmp_path / "checkpoint.json"
    assert read_checkpoint(path, "r0001", "default", "ab" * 32) is None
    write_checkpoint(path, sample())
    assert read_checkpoint(path, "r0001", "default", "ab" * 32) == sample()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda text: text.replace("[0,1]", "[0,2]").replace("[0, 1]", "[0, 2]"),
            "checksum mismatch",
        ),
        (lambda text: text[: len(text) // 2], "unreadable"),
        (lambda text: "", "unreadable"),
    ],
)
def test_corruption_is_detected(tmp_path, damage, message):
    path = tmp_path / "checkpoint.json"
    write_checkpoint(path, sample())
    path.write_text(damage(path.read_text()))
    with pytest.raises(CheckpointError, match=message) as err:
        read_checkpoint(path, "r0001", "default", "ab" * 32)
    assert str(path) in str(err.value)


def test_foreign_checkpoint_refused(tmp_path):
    path = tmp_path / "checkpoint.json"
    write_checkpoint(path, sample())
    with pytest.raises(CheckpointError, match="trial 'default', not 'other'"):
        read_checkpoint(path, "r0001", "other", "ab" * 32)
    with pytest.raises(CheckpointError, match="params_sha256"):
        read_checkpoint(path, "r0001", "default", "cd" * 32)


def test_stage_segments_back_to_back():
    assert stage_segments(3, 10.0, {"read": 1.0, "calibrate": 0.5}) == [
        (3, 10.0, 11.0, "read"),
        (3, 11.0, 11.5, "calibrate"),
    ]


def test_weather_png_one_lane_per_rank(tmp_path):
    def segments(ranks):
        return [
            seg
            for r in ranks
            for i in range(5)
            for seg in stage_segments(r, 100.0 + i, {"read": 0.1, "spotfind": 0.5, "index": 0.2})
        ]

    one = matplotlib.image.imread(plot_weather(segments([1]), tmp_path / "one.png"))
    eight = matplotlib.image.imread(plot_weather(segments(range(1, 9)), tmp_path / "eight.png"))
    assert one.shape[1] == eight.shape[1]
    assert eight.shape[0] - one.shape[0] == pytest.approx(
        7 * 35, abs=2
    )  # 0.35 in at 100 dpi per lane


def test_weather_legend_shows_every_stage_inside_the_figure():
    stages = {"read": 0.05, "calibrate": 0.1, "spotfind": 0.2, "index": 0.3, "refine": 0.1}
    segments = [
        seg
        for r in (1, 2)
        for i in range(5)
        for seg in stage_segments(r, 100.0 + i, {**stages, "integrate": 0.2})
    ]
    fig = weather_figure(segments, "r0001: 2 ranks")
    fig.canvas.draw()
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [*stages, "integrate"]
    box, page = legend.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    # nor does it cover the lanes
    assert not box.overlaps(fig.axes[0].get_window_extent())


def test_busy_time_is_the_exact_overlap_with_each_bin():
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    busy = busy_time(np.array([0.5, 2.0, 3.75]), np.array([1.25, 2.5, 4.0]), edges)
    assert busy == pytest.approx([0.5, 0.25, 0.5, 0.25])


def test_weather_image_mixes_stage_colours_by_share_of_each_bin():
    # rank 7: "read" fills the first half of the run, then idle; rank 9: "index" the last quarter
    segments = [(7, 100.0, 102.0, "read"), (9, 103.0, 104.0, "index")]
    colours = {"read": (1.0, 0.0, 0.0, 1.0), "index": (0.0, 0.0, 1.0, 1.0)}
    image, span = weather_image(segments, [7, 9], ["read", "index"], colours)
    assert span == 4.0
    assert image.shape == (2 * LANE_ROWS, TIME_BINS, 3)
    middle = LANE_ROWS // 2
    lane7, lane9 = image[middle], image[LANE_ROWS + middle]
    assert (lane7[: TIME_BINS // 2] == [255, 0, 0]).all()
    assert (lane7[TIME_BINS // 2 :] == 255).all()
    assert (lane9[-TIME_BINS // 4 :] == [0, 0, 255]).all()
    assert (lane9[: TIME_BINS * 3 // 4] == 255).all()
    assert (image[0] == 255).all()  # the gap between lanes stays white


def test_dominant_spans_are_the_stretches_of_one_stage_and_busy_level():
    # rank 3: read 0-2 s, spot 2-3 s, idle 3-4 s; rank 5: spot 1-4 s — four 1-s bins
    segments = [(3, 10.0, 12.0, "read"), (3, 12.0, 13.0, "spot"), (5, 11.0, 14.0, "spot")]
    shares, span = stage_shares(segments, [3, 5], ["read", "spot"], bins=4)
    assert span == 4.0 and shares[0, 0].tolist() == [1, 1, 0, 0]
    assert dominant_spans(shares) == [(0, 0, 4, 0, 2), (0, 1, 4, 2, 3), (1, 1, 4, 1, 4)]


def test_a_mostly_idle_bin_is_a_faint_bar_of_its_busiest_stage():
    # bin 0: read 0.2 + spot 0.1 of it (busy 0.3 -> level 2 of 4); bin 1: spot 0.5 (level 2)
    segments = [(0, 0.0, 0.2, "read"), (0, 0.2, 0.3, "spot"), (0, 1.5, 2.0, "spot")]
    shares, _ = stage_shares(segments, [0], ["read", "spot"], 2)
    assert dominant_spans(shares) == [(0, 0, 2, 0, 1), (0, 1, 2, 1, 2)]
    assert dominant_spans(shares, levels=2) == [(0, 0, 1, 0, 1), (0, 1, 1, 1, 2)]
