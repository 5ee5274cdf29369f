"""Trigger: wait, without a worker slot, for the next closed chunks of one live run (or its end).

The live pipeline's transfer task defers on it after each batch of chunks: it fires once with
every chunk from ``next_chunk`` on that is closed now (contiguous, in order), the run marker if
the run has concluded, or ``stalled`` once ``deadline`` passes with neither. What the task has
handled travels in the trigger's arguments (``next_chunk``, the Redis ``stream_id``), not in a
ledger: a restarted triggerer rebuilds the same trigger and fires the same chunks, a replayed or
duplicated chunk event (below ``next_chunk``, or twice in one batch) is dropped, and a chunk is
only passed over once the task has moved it. Two sources, as for run events: the run folder
(scanned) or the Redis stream the DAQ publishes to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from kernels.io.chunk_marker import (
    CHUNK_EVENT,
    CONCLUDED_EVENT,
    ChunkMarker,
    event_kind,
    read_chunk_markers,
)
from kernels.io.marker import MARKER, RUNS_FOLDER, MarkerError, RunMarker, read_marker
from operators.triggers.job import SETTLE_SECONDS
from operators.triggers.run_concluded import DEFAULT_REDIS_URL, DEFAULT_STREAM, SOURCES


def next_batch(markers: list[ChunkMarker], next_chunk: int) -> list[ChunkMarker]:
    """The contiguous run of chunks ``next_chunk, next_chunk + 1, ...`` among ``markers``.

    Duplicates count once and chunks below ``next_chunk`` (already handled) are dropped; a gap
    stops the batch, so chunks are always handed over in order.
    """
    by_chunk = {m.chunk: m for m in markers if m.chunk >= next_chunk}
    batch: list[ChunkMarker] = []
    while next_chunk + len(batch) in by_chunk:
        batch.append(by_chunk[next_chunk + len(batch)])
    return batch


def folder_state(run_dir: Path) -> tuple[RunMarker | None, list[ChunkMarker]]:
    """(run marker or None, chunk markers) of a run folder; the run marker is read first, so
    when it is there every chunk marker (written before it) is seen too."""
    concluded = read_marker(run_dir) if (run_dir / MARKER).exists() else None
    return concluded, read_chunk_markers(run_dir)


class ChunkClosedTrigger(BaseTrigger):
    """Fire once with the run's next closed chunks, its conclusion, or a stall.

    Parameters
    ----------
    exp_dir, run_name : str
        The run is ``<exp_dir>/runs/<run_name>`` (beamline side).
    next_chunk : int
        First chunk not handled yet.
    deadline : float
        UNIX time after which, with no new chunk and no run marker, the run is ``stalled``.
    source : {"folder", "redis"}
    poll_interval : float
        Seconds between folder scans, or the Redis blocking-read timeout.
    redis_url, stream : str
        The DAQ's stream (redis source).
    stream_id : str
        Last stream message already handled (redis source).
    settle_seconds : float
        Wait before the first look (apache/airflow#71580: a trigger firing while the deferring
        worker still exits fails the task).
    carry : dict
        The deferring task's own progress, handed back in the event (it survives a triggerer
        restart with the trigger, and needs no ``next_kwargs``).

    Notes
    -----
    Event payload: ``{"chunks": [chunk marker dicts], "concluded": run marker dict or None,
    "stalled": bool, "stream_id": str, "carry": dict}``.
    """

    def __init__(
        self,
        exp_dir: str,
        run_name: str,
        next_chunk: int,
        deadline: float,
        source: str = "folder",
        poll_interval: float = 0.5,
        redis_url: str = DEFAULT_REDIS_URL,
        stream: str = DEFAULT_STREAM,
        stream_id: str = "0",
        settle_seconds: float = SETTLE_SECONDS,
        carry: dict | None = None,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"ChunkClosedTrigger: source must be one of {SOURCES}, got {source!r}")
        self.exp_dir = exp_dir
        self.run_name = run_name
        self.next_chunk = int(next_chunk)
        self.deadline = float(deadline)
        self.source = source
        self.poll_interval = float(poll_interval)
        self.redis_url = redis_url
        self.stream = stream
        self.stream_id = stream_id
        self.settle_seconds = float(settle_seconds)
        self.carry = dict(carry or {})

    def serialize(self) -> tuple[str, dict]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "exp_dir": self.exp_dir,
                "run_name": self.run_name,
                "next_chunk": self.next_chunk,
                "deadline": self.deadline,
                "source": self.source,
                "poll_interval": self.poll_interval,
                "redis_url": self.redis_url,
                "stream": self.stream,
                "stream_id": self.stream_id,
                "settle_seconds": self.settle_seconds,
                "carry": self.carry,
            },
        )

    def _event(self, chunks, concluded, stream_id: str) -> TriggerEvent:
        return TriggerEvent(
            {
                "chunks": [m.to_dict() for m in chunks],
                "concluded": concluded.to_dict() if concluded else None,
                "stalled": not chunks and concluded is None,
                "stream_id": stream_id,
                "carry": self.carry,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(self.settle_seconds)
        if self.source == "folder":
            yield await self._from_folder()
        else:
            yield await self._from_redis()

    async def _from_folder(self) -> TriggerEvent:
        run_dir = Path(self.exp_dir) / RUNS_FOLDER / self.run_name
        while True:
            try:
                concluded, markers = await asyncio.to_thread(folder_state, run_dir)
            except (MarkerError, OSError) as error:  # a marker being fixed: look again later
                self.log.error("run %s: %s", self.run_name, error)
                concluded, markers = None, []
            batch = next_batch(markers, self.next_chunk)
            if batch or concluded or time.time() >= self.deadline:
                return self._event(batch, concluded, self.stream_id)
            await asyncio.sleep(self.poll_interval)

    async def _from_redis(self) -> TriggerEvent:
        """Read the stream from ``stream_id`` until a batch, the run's end or the deadline.

        The returned ``stream_id`` is the last message before any chunk held back by a gap, so
        nothing this batch did not hand over is skipped next time.
        """
        import redis

        block_ms = max(1, round(self.poll_interval * 1000))
        client = redis.Redis.from_url(
            self.redis_url, socket_connect_timeout=10, socket_timeout=self.poll_interval + 30
        )
        seen: list[tuple[str, ChunkMarker]] = []  # this run's chunk messages, in stream order
        last_id, concluded = self.stream_id, None
        try:
            while True:
                try:
                    reply: Any = await asyncio.to_thread(
                        client.xread, {self.stream: last_id}, count=100, block=block_ms
                    )
                except (redis.exceptions.ConnectionError, OSError) as error:
                    self.log.warning("redis %s unreachable (%s)", self.stream, error)
                    reply = None
                    await asyncio.sleep(self.poll_interval)
                for _stream, messages in reply or []:
                    for message_id, fields in messages:
                        last_id = (
                            message_id.decode() if isinstance(message_id, bytes) else message_id
                        )
                        concluded = self._read_message(fields, last_id, seen) or concluded
                batch = next_batch([m for _, m in seen], self.next_chunk)
                if batch or concluded or time.time() >= self.deadline:
                    return self._event(
                        batch, concluded, handed_over_id(seen, batch, last_id, self.stream_id)
                    )
        finally:
            client.close()

    def _read_message(self, fields, message_id: str, seen: list) -> RunMarker | None:
        """Note a chunk message of this run in ``seen``; return its run marker if it is one."""
        kind, origin = event_kind(fields), f"redis stream {self.stream} message {message_id}"
        try:
            if kind == CHUNK_EVENT:
                marker = ChunkMarker.from_stream_fields(fields, origin)
                if marker.run_name == self.run_name:
                    seen.append((message_id, marker))
            elif kind == CONCLUDED_EVENT:
                run_marker = RunMarker.from_stream_fields(fields, origin)
                if run_marker.run_name == self.run_name:
                    return run_marker
        except MarkerError as error:
            self.log.error("skipping message: %s", error)
        return None


def handed_over_id(
    seen: list[tuple[str, ChunkMarker]], batch: list, last_id: str, start_id: str
) -> str:
    """The stream id up to which every message of this run was handed over (or is obsolete):
    ``last_id`` unless a chunk beyond the batch was held back by a gap, then the message before
    it (``start_id`` if none)."""
    handed = {m.chunk for m in batch}
    top = max(handed, default=-1)
    held = [mid for mid, m in seen if m.chunk > top and m.chunk not in handed]
    if not held:
        return last_id
    first_held = held[0]
    before = [mid for mid, _ in seen if _stream_order(mid) < _stream_order(first_held)]
    return before[-1] if before else start_id


def _stream_order(message_id: str) -> tuple[int, int]:
    millis, _, sequence = message_id.partition("-")
    return int(millis), int(sequence or 0)
