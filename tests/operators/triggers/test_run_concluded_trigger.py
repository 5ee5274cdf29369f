"""RunConcludedTrigger run directly with asyncio: folder watcher and Redis stream, one event per run."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from operators.run_events import MARKER_NAME, marker_to_stream_fields
from operators.triggers.run_concluded import RunConcludedTrigger
from tests.operators.fake_runs import make_run

REDIS_URL = "redis://127.0.0.1:6379/0"


async def collect(
    trigger: RunConcludedTrigger, count: int, timeout: float, during=None
) -> list[dict]:
    """Payloads of the first ``count`` events (fewer if ``timeout`` passes); ``during`` runs meanwhile.

    Like the triggerer, it keeps pulling after an event (here for 0.3 s more), which is when the
    trigger records the run in its ledger.
    """
    events: list[dict] = []
    stream = trigger.run()

    async def consume():
        while len(events) < count:
            events.append((await stream.__anext__()).payload)
        try:
            await asyncio.wait_for(stream.__anext__(), 0.3)
        except TimeoutError:
            pass

    task = asyncio.create_task(consume())
    if during is not None:
        await during()
    try:
        await asyncio.wait_for(task, timeout)
    except TimeoutError:
        pass
    await stream.aclose()
    return events


def folder_trigger(tmp_path, **kwargs) -> RunConcludedTrigger:
    return RunConcludedTrigger(
        exp_dir=str(tmp_path / "exp"),
        state_dir=str(tmp_path / "state"),
        poll_interval=0.1,
        **kwargs,
    )


def test_folder_emits_concluded_runs_oldest_first_and_skips_runs_in_progress(tmp_path):
    runs = tmp_path / "exp" / "runs"
    make_run(runs, 2, [100, 50])
    make_run(runs, 1, [100])
    make_run(runs, 3, [100], conclude=False)  # still being written
    events = asyncio.run(collect(folder_trigger(tmp_path), 3, timeout=1.5))
    assert [e["run_name"] for e in events] == ["r0001", "r0002"]
    first = events[0]
    assert set(first) == {"run", "run_name", "files", "exp_dir", "concluded_at", "event", "live"}
    assert first["event"] == "concluded" and first["live"] is False
    assert first["exp_dir"] == str(tmp_path / "exp") and first["run"] == 1
    assert first["files"][0]["name"] == "r0001-c00.h5" and first["files"][0]["bytes"] == 100


def test_marker_to_event_within_two_seconds(tmp_path):
    runs = tmp_path / "exp" / "runs"
    make_run(runs, 1, [1000], conclude=False)
    written = {}

    async def conclude_later():
        await asyncio.sleep(0.5)
        make_run(runs, 1, [1000])
        written["at"] = time.monotonic()

    trigger = RunConcludedTrigger(
        exp_dir=str(tmp_path / "exp"), state_dir=str(tmp_path / "state")
    )  # defaults
    events = asyncio.run(collect(trigger, 1, timeout=5, during=conclude_later))
    latency = time.monotonic() - written["at"]
    assert [e["run_name"] for e in events] == ["r0001"]
    assert latency <= 2.0, f"event came {latency:.2f} s after the marker"


def test_restart_with_same_ledger_does_not_emit_again(tmp_path):
    runs = tmp_path / "exp" / "runs"
    make_run(runs, 1, [10])
    assert len(asyncio.run(collect(folder_trigger(tmp_path), 1, timeout=2))) == 1

    # a new trigger instance (triggerer restart) sees r0001 again on disk: nothing, then only r0002
    async def new_run():
        await asyncio.sleep(0.3)
        make_run(runs, 2, [10])

    events = asyncio.run(collect(folder_trigger(tmp_path), 2, timeout=1.5, during=new_run))
    assert [e["run_name"] for e in events] == ["r0002"]


def test_bad_marker_is_skipped_and_other_runs_still_flow(tmp_path, capsys):
    runs = tmp_path / "exp" / "runs"
    make_run(runs, 1, [10])
    (runs / "r0001" / MARKER_NAME).write_text('{"run": 1}')
    make_run(runs, 2, [10])
    events = asyncio.run(collect(folder_trigger(tmp_path), 2, timeout=1))
    assert [e["run_name"] for e in events] == ["r0002"]
    logged = capsys.readouterr().out
    assert "skipping run r0001" in logged and "lacks" in logged


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="source"):
        RunConcludedTrigger(exp_dir="/x", state_dir="/y", source="kafka")


@pytest.fixture
def stream():
    client = redis.Redis.from_url(REDIS_URL)
    name = f"sfxflow-test:{uuid.uuid4().hex}"
    yield client, name
    client.delete(name)
    client.close()


def test_redis_stream_duplicate_messages_give_one_event_per_run(tmp_path, stream):
    client, name = stream
    first = make_run(tmp_path / "exp" / "runs", 1, [10])
    second = make_run(tmp_path / "exp" / "runs", 2, [10])
    for marker in (first, first, second, first):  # replayed/duplicated messages
        client.xadd(name, marker_to_stream_fields(marker))
    client.xadd(name, {"run": "x"})  # malformed: logged, skipped
    trigger = folder_trigger(tmp_path, source="redis", redis_url=REDIS_URL, stream=name)
    events = asyncio.run(collect(trigger, 3, timeout=2))
    assert [e["run_name"] for e in events] == ["r0001", "r0002"]
    assert events[0]["files"] == first["files"]
    # restart: the whole stream is replayed, the ledger drops all of it
    assert (
        asyncio.run(
            collect(
                folder_trigger(tmp_path, source="redis", redis_url=REDIS_URL, stream=name),
                1,
                timeout=1,
            )
        )
        == []
    )


def test_redis_message_arriving_later_is_picked_up_fast(tmp_path, stream):
    client, name = stream
    marker = make_run(tmp_path / "exp" / "runs", 5, [10])
    sent = {}

    async def publish_later():
        await asyncio.sleep(0.5)
        client.xadd(name, marker_to_stream_fields(marker))
        sent["at"] = time.monotonic()

    trigger = folder_trigger(tmp_path, source="redis", redis_url=REDIS_URL, stream=name)
    events = asyncio.run(collect(trigger, 1, timeout=5, during=publish_later))
    assert [e["run"] for e in events] == [5]
    assert time.monotonic() - sent["at"] <= 2.0
