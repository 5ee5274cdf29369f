"""The live DAQ: STARTED first, each chunk closed on the frame clock with its marker, CONCLUDED last."""

import dataclasses
import json
import os
import uuid

import h5py
import numpy as np
import pytest
import redis

from facility.beamline.__main__ import main as beamline_main
from facility.beamline.live import LiveOptions, close_time, redis_notify, simulate_live
from facility.beamline.replay import replay_live, replay_post_run
from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.io.chunk_marker import (
    CHUNK_EVENT,
    CONCLUDED_EVENT,
    STARTED,
    STARTED_EVENT,
    ChunkMarker,
    event_kind,
    read_chunk_markers,
    read_started,
    started_from_stream_fields,
)
from kernels.io.marker import MARKER, RunMarker, adler32_file, read_marker
from kernels.io.runformat import open_run

REDIS_URL = "redis://127.0.0.1:6379/0"
SMALL = dataclasses.replace(SimulationParams(), chunk_size=4)


def test_close_time_follows_the_frame_clock():
    assert close_time(100.0, 249, 125.0) == pytest.approx(102.0)
    with pytest.raises(ValueError, match="frame rate"):
        LiveOptions(frame_rate_hz=0)


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """One 8-event run at 20 Hz (2 chunks of 4), its markers also sent to a Redis stream."""
    out = tmp_path_factory.mktemp("live")
    stream = f"sfxflow:test-live-daq:{uuid.uuid4().hex}"
    options = LiveOptions(frame_rate_hz=20.0, notify=redis_notify(REDIS_URL, stream))
    simulate_live(out, 1, 8, seed=4, params=SMALL, options=options, log=lambda *_: None)
    client = redis.Redis.from_url(REDIS_URL)
    messages = [fields for _, fields in client.xrange(stream)]
    client.delete(stream)
    return out / "runs" / "r0001", messages


def test_markers_appear_in_order_on_the_frame_clock(live_run):
    run_dir, _ = live_run
    started = read_started(run_dir)
    assert started["frame_rate_hz"] == 20.0
    assert [f["name"] for f in started["files"]] == ["calibration.h5"]
    chunks = read_chunk_markers(run_dir)
    assert [m.chunk for m in chunks] == [0, 1] and [m.events for m in chunks] == [4, 4]
    order = [run_dir / STARTED] + [run_dir / m.marker_name for m in chunks] + [run_dir / MARKER]
    times = [os.stat(p).st_mtime for p in order]
    assert times == sorted(times)
    t0 = times[0]
    for marker, t in zip(chunks, times[1:-1], strict=True):
        assert t >= t0 + 4 * (marker.chunk + 1) / 20.0 - 0.05  # never before its last frame
    for marker in chunks:
        for entry in marker.files:
            assert entry.bytes == (run_dir / entry.name).stat().st_size
            assert entry.adler32 == adler32_file(run_dir / entry.name)
    listed = {f.name for f in read_marker(run_dir).files}
    assert {f.name for m in chunks for f in m.files} | {"calibration.h5"} <= listed


def test_live_run_is_the_post_run_simulation_frame_for_frame(live_run, tmp_path):
    run_dir, _ = live_run
    simulate_experiment(tmp_path, 1, 8, seed=4, params=SMALL, log=lambda *_: None)
    with open_run(run_dir) as live, open_run(tmp_path / "runs" / "r0001") as post:
        assert live.events == post.events
        for chunk, event in live.events:
            assert np.array_equal(live.read_frame(chunk, event), post.read_frame(chunk, event))
        timestamps = np.concatenate([c.timestamps for c in live.chunks])
    assert np.allclose(np.diff(timestamps), 1 / 20.0)
    with h5py.File(run_dir.parent.parent / "truth" / "r0001.h5") as truth:
        assert len(truth["hit"]) == 8


def test_every_marker_goes_to_the_stream_in_order(live_run):
    run_dir, messages = live_run
    kinds = [event_kind(m) for m in messages]
    assert kinds == [STARTED_EVENT, CHUNK_EVENT, CHUNK_EVENT, CONCLUDED_EVENT]
    assert started_from_stream_fields(messages[0], "m0") == read_started(run_dir)
    chunks = [ChunkMarker.from_stream_fields(m, "m") for m in messages[1:3]]
    assert chunks == read_chunk_markers(run_dir)
    assert RunMarker.from_stream_fields(messages[3], "m3") == read_marker(run_dir)


def test_crashed_daq_leaves_closed_chunks_and_no_run_marker(tmp_path):
    code = beamline_main(
        [
            "simulate",
            "--out",
            str(tmp_path),
            "--images",
            "4",
            "--chunk-size",
            "2",
            "--live",
            "--frame-rate",
            "100",
            "--crash-after-chunks",
            "1",
            "--seed",
            "4",
        ]
    )
    run_dir = tmp_path / "runs" / "r0001"
    assert code == 0 and read_started(run_dir) is not None
    assert [m.chunk for m in read_chunk_markers(run_dir)] == [0]
    assert not (run_dir / MARKER).exists()
    assert json.loads((run_dir / STARTED).read_text())["run_name"] == "r0001"


def test_replay_lays_out_long_runs_from_rendered_chunks(live_run, tmp_path):
    run_dir, _ = live_run
    post = replay_post_run(run_dir, tmp_path, 2, chunks=5)
    closed = replay_live(run_dir, tmp_path, 3, 3, LiveOptions(frame_rate_hz=400.0))
    with open_run(post) as run, open_run(run_dir) as source:
        assert run.n_events == 20 and len(run.chunks) == 5
        assert np.array_equal(run.read_frame(3, 2), source.read_frame(1, 2))  # chunk 3 = 1 again
    assert [c for c, _ in closed] == [0, 1, 2] and closed[-1][1] - closed[0][1] >= 8 / 400 - 0.01
    assert [m.chunk for m in read_chunk_markers(tmp_path / "runs" / "r0003")] == [0, 1, 2]
    assert read_marker(tmp_path / "runs" / "r0003").run == 3
