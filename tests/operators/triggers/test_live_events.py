"""Run-started and chunk-closed events, folder and Redis: once each, in order, across restarts."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from kernels.io.chunk_marker import ChunkMarker, started_to_stream_fields
from kernels.io.marker import RunMarker, write_marker
from operators.pipeline.live import split_events
from operators.triggers.chunk_closed import ChunkClosedTrigger, next_batch
from operators.triggers.run_concluded import RunConcludedTrigger
from tests.operators.fake_runs import make_live_chunk, make_run, start_live_run
from tests.operators.triggers.test_run_concluded_trigger import collect

REDIS_URL = "redis://127.0.0.1:6379/0"


def run_trigger(tmp_path, **kwargs) -> RunConcludedTrigger:
    return RunConcludedTrigger(
        exp_dir=str(tmp_path / "exp"),
        state_dir=str(tmp_path / "state"),
        poll_interval=0.1,
        **kwargs,
    )


def chunk_trigger(tmp_path, next_chunk=0, deadline_in=20.0, **kwargs) -> ChunkClosedTrigger:
    return ChunkClosedTrigger(
        exp_dir=str(tmp_path / "exp"),
        run_name="r0001",
        next_chunk=next_chunk,
        deadline=time.time() + deadline_in,
        poll_interval=0.1,
        settle_seconds=0,
        **kwargs,
    )


def fire(trigger: ChunkClosedTrigger, during=None, timeout: float = 10) -> dict:
    """The payload of the trigger's one event (``during`` runs meanwhile)."""

    async def go():
        task = asyncio.create_task(trigger.run().__anext__())
        if during is not None:
            await during()
        return (await asyncio.wait_for(task, timeout)).payload

    return asyncio.run(go())


@pytest.fixture
def stream():
    client = redis.Redis.from_url(REDIS_URL)
    name = f"sfxflow-test-live:{uuid.uuid4().hex}"
    yield client, name
    client.delete(name)
    client.close()


def test_started_comes_before_concluded_and_marks_the_run_live(tmp_path):
    runs = tmp_path / "exp" / "runs"
    start_live_run(runs, 1)
    make_live_chunk(runs, 1, 0, 100)
    write_marker(runs / "r0001", 1)
    make_run(runs, 2, [10])  # a DAQ without chunk events: post-run only
    events = asyncio.run(collect(run_trigger(tmp_path), 3, timeout=5))
    assert [(e["event"], e["run_name"]) for e in events] == [
        ("started", "r0001"),
        ("concluded", "r0001"),
        ("concluded", "r0002"),
    ]
    assert events[0]["files"][0]["name"] == "calibration.h5"
    assert [e.get("live") for e in events[1:]] == [True, False]
    assert split_events(events) == (["r0001"], ["r0002"])


def test_restart_between_start_and_end_still_knows_the_run_went_live(tmp_path):
    runs = tmp_path / "exp" / "runs"
    start_live_run(runs, 1)
    assert [e["event"] for e in asyncio.run(collect(run_trigger(tmp_path), 1, 5))] == ["started"]
    write_marker(runs / "r0001", 1)
    events = asyncio.run(collect(run_trigger(tmp_path), 1, timeout=5))  # a new triggerer
    assert [(e["event"], e["live"]) for e in events] == [("concluded", True)]
    assert asyncio.run(collect(run_trigger(tmp_path), 1, timeout=1)) == []
    assert split_events(events) == ([], [])  # handled live: no post-run sfx_run


def test_a_run_already_concluded_post_run_never_goes_live(tmp_path):
    runs = tmp_path / "exp" / "runs"
    make_run(runs, 1, [10])
    assert len(asyncio.run(collect(run_trigger(tmp_path), 1, 2))) == 1
    start_live_run(runs, 1)  # a STARTED.json appearing late (copied folder, replayed DAQ)
    assert asyncio.run(collect(run_trigger(tmp_path), 1, timeout=1)) == []


def test_redis_stream_carries_all_three_in_order_and_replays_are_dropped(tmp_path, stream):
    client, name = stream
    runs = tmp_path / "exp" / "runs"
    started = start_live_run(runs, 1)
    chunk = ChunkMarker.from_dict(make_live_chunk(runs, 1, 0, 10), "test")
    marker = write_marker(runs / "r0001", 1)
    for fields in (
        started_to_stream_fields(started),
        chunk.to_stream_fields(),
        started_to_stream_fields(started),
        marker.to_stream_fields(),
        marker.to_stream_fields(),
    ):
        client.xadd(name, fields)
    trigger = run_trigger(tmp_path, source="redis", redis_url=REDIS_URL, stream=name)
    events = asyncio.run(collect(trigger, 2, timeout=5))
    assert [(e["event"], e.get("live")) for e in events] == [("started", None), ("concluded", True)]
    restarted = run_trigger(tmp_path, source="redis", redis_url=REDIS_URL, stream=name)
    assert asyncio.run(collect(restarted, 1, timeout=1)) == []


def test_next_batch_is_contiguous_in_order_and_drops_replays():
    markers = [ChunkMarker(1, "r0001", c, 4, (), "t") for c in (3, 1, 2, 2, 0, 5)]
    assert [m.chunk for m in next_batch(markers, 0)] == [0, 1, 2, 3]
    assert [m.chunk for m in next_batch(markers, 2)] == [2, 3]
    assert next_batch(markers, 4) == []  # chunk 4 missing: 5 waits for it


def test_folder_chunks_fire_once_each_across_a_triggerer_restart(tmp_path):
    runs = tmp_path / "exp" / "runs"
    start_live_run(runs, 1)
    make_live_chunk(runs, 1, 0, 10)
    make_live_chunk(runs, 1, 1, 10)
    first = fire(chunk_trigger(tmp_path))
    assert [c["chunk"] for c in first["chunks"]] == [0, 1] and not first["stalled"]
    # the task deferred again with next_chunk=2; the triggerer restarts: a new object from kwargs
    _, kwargs = chunk_trigger(tmp_path, next_chunk=2).serialize()
    restarted = ChunkClosedTrigger(**kwargs)

    async def close_chunk_2():
        await asyncio.sleep(0.3)
        make_live_chunk(runs, 1, 2, 10)

    second = fire(restarted, during=close_chunk_2)
    assert [c["chunk"] for c in second["chunks"]] == [2] and second["concluded"] is None
    write_marker(runs / "r0001", 1)
    last = fire(chunk_trigger(tmp_path, next_chunk=3))
    assert last["chunks"] == [] and last["concluded"]["run_name"] == "r0001"


def test_no_chunk_and_no_run_marker_until_the_deadline_is_a_stall(tmp_path):
    runs = tmp_path / "exp" / "runs"
    start_live_run(runs, 1)
    make_live_chunk(runs, 1, 0, 10)
    started = time.monotonic()
    event = fire(chunk_trigger(tmp_path, next_chunk=1, deadline_in=0.5))
    assert event["stalled"] and event["chunks"] == [] and event["concluded"] is None
    assert 0.4 <= time.monotonic() - started < 3


def test_redis_chunk_events_replayed_or_out_of_order_are_handed_over_once(tmp_path, stream):
    client, name = stream
    runs = tmp_path / "exp" / "runs"
    chunks = [ChunkMarker.from_dict(make_live_chunk(runs, 1, c, 10), "t") for c in range(4)]
    other = ChunkMarker(2, "r0002", 0, 4, chunks[0].files, "t")
    for marker in (chunks[0], chunks[0], other, chunks[1], chunks[3]):  # replay, other run, gap
        client.xadd(name, marker.to_stream_fields())
    options = {"source": "redis", "redis_url": REDIS_URL, "stream": name}
    first = fire(chunk_trigger(tmp_path, **options))
    assert [c["chunk"] for c in first["chunks"]] == [0, 1]
    client.xadd(name, chunks[2].to_stream_fields())  # the late one
    second = fire(chunk_trigger(tmp_path, next_chunk=2, stream_id=first["stream_id"], **options))
    assert [c["chunk"] for c in second["chunks"]] == [2, 3]  # chunk 3 was not skipped
    client.xadd(
        name, RunMarker.from_dict(write_marker(runs / "r0001", 1).to_dict(), "t").to_stream_fields()
    )
    third = fire(chunk_trigger(tmp_path, next_chunk=4, stream_id=second["stream_id"], **options))
    assert third["chunks"] == [] and third["concluded"]["run"] == 1
