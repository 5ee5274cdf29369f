"""Airflow event trigger: one event per started and per concluded run, for an ``AssetWatcher``.

A run acquired live announces itself with ``STARTED.json`` (:mod:`kernels.io.chunk_marker`):
its run-started event comes before its run-concluded event, and the latter says ``live`` so the
post-run pipeline is not started for it too. Chunk-closed events are followed per run by
:class:`~operators.triggers.chunk_closed.ChunkClosedTrigger`. Two sources, one code path after them: the experiment folder (default; ``<exp>/runs/*/``
scanned for the ``CONCLUDED.json`` marker) or a Redis stream carrying the same marker (sites
with a message bus). A small SQLite ledger under ``state_dir`` remembers which runs were
emitted, so replays, duplicate messages and triggerer restarts never emit a run twice::

    runs = Asset("sfx://exp1/runs", watchers=[AssetWatcher(
        name="exp1_runs", trigger=RunConcludedTrigger(exp_dir="/data/exp1", state_dir="/var/sfxflow"))])
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from kernels.io.chunk_marker import (
    CONCLUDED_EVENT,
    STARTED,
    STARTED_EVENT,
    event_kind,
    read_started,
    started_from_stream_fields,
)
from kernels.io.marker import (
    MARKER,
    RUNS_FOLDER,
    MarkerError,
    RunMarker,
    read_marker,
    run_order,
)

SOURCES = ("folder", "redis")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "sfxflow:run-concluded"
LEDGER_NAME = "run_concluded_ledger.sqlite"
LEDGER_TABLES = {CONCLUDED_EVENT: "emitted", STARTED_EVENT: "started"}  # one table per event kind


class EmittedRunLedger:
    """Durable record of the runs already emitted, keyed by (experiment folder, run name).

    Parameters
    ----------
    path : Path
        SQLite file; created with its folder if missing.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with closing(self._connect()) as db, db:
            for table in LEDGER_TABLES.values():
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (exp_dir TEXT NOT NULL,"
                    " run_name TEXT NOT NULL, run INTEGER NOT NULL, emitted_at TEXT NOT NULL,"
                    " PRIMARY KEY (exp_dir, run_name))"
                )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def emitted(self, exp_dir: str, kind: str = CONCLUDED_EVENT) -> set[str]:
        """Run names whose ``kind`` event was already emitted for ``exp_dir``."""
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT run_name FROM {LEDGER_TABLES[kind]} WHERE exp_dir = ?", (exp_dir,)
            )
            return {name for (name,) in rows}

    def record(self, exp_dir: str, run_name: str, run: int, kind: str = CONCLUDED_EVENT) -> None:
        """Remember that the ``kind`` event of ``run_name`` of ``exp_dir`` was emitted (idempotent)."""
        with closing(self._connect()) as db, db:
            db.execute(
                f"INSERT OR IGNORE INTO {LEDGER_TABLES[kind]} (exp_dir, run_name, run, emitted_at)"
                " VALUES (?, ?, ?, ?)",
                (exp_dir, run_name, run, datetime.now(UTC).isoformat()),
            )


class RunConcludedTrigger(BaseEventTrigger):
    """Emit one ``TriggerEvent`` per started and per concluded run, oldest run first, never twice.

    Parameters
    ----------
    exp_dir : str
        Experiment folder (beamline side); runs are in ``<exp_dir>/runs/<run_name>/``.
    state_dir : str
        Folder for the ledger of emitted runs; must survive triggerer restarts.
    source : {"folder", "redis"}
        Where run-concluded markers come from.
    poll_interval : float
        Seconds between folder scans (folder source) or the Redis blocking-read timeout.
    redis_url : str
        Redis server (redis source). No password belongs here: use a Redis ACL-free local
        socket or put credentials in the environment of the triggerer.
    stream : str
        Redis stream name (redis source).

    Notes
    -----
    Event payloads: ``{"event": "concluded", "run", "run_name", "files", "exp_dir",
    "concluded_at", "live"}`` (``live``: its run-started event was emitted) and ``{"event":
    "started", "run", "run_name", "started_at", "frame_rate_hz", "files", "exp_dir"}``, the
    started event of a run always before its concluded one; a run already emitted as concluded
    never gets a started event (it stays on the post-run path). An event is recorded in the
    ledger right after it is handed to the triggerer, so a crash in between can repeat an event
    (at least once) but never lose one.
    """

    def __init__(
        self,
        exp_dir: str,
        state_dir: str,
        source: str = "folder",
        poll_interval: float = 0.5,
        redis_url: str = DEFAULT_REDIS_URL,
        stream: str = DEFAULT_STREAM,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(
                f"RunConcludedTrigger: source must be one of {SOURCES}, got {source!r}"
            )
        if poll_interval <= 0:
            raise ValueError(f"RunConcludedTrigger: poll_interval must be > 0, got {poll_interval}")
        self.exp_dir = os.path.abspath(exp_dir)
        self.state_dir = os.path.abspath(state_dir)
        self.source = source
        self.poll_interval = float(poll_interval)
        self.redis_url = redis_url
        self.stream = stream

    def serialize(self) -> tuple[str, dict]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "exp_dir": self.exp_dir,
                "state_dir": self.state_dir,
                "source": self.source,
                "poll_interval": self.poll_interval,
                "redis_url": self.redis_url,
                "stream": self.stream,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ledger = EmittedRunLedger(Path(self.state_dir) / LEDGER_NAME)
        done = {
            kind: await asyncio.to_thread(ledger.emitted, self.exp_dir, kind)
            for kind in LEDGER_TABLES
        }
        markers = self._folder_markers(done) if self.source == "folder" else self._redis_markers()
        async for kind, marker in markers:
            name = marker["run_name"]
            if name in done[kind] or (kind == STARTED_EVENT and name in done[CONCLUDED_EVENT]):
                continue
            payload = dict(marker, exp_dir=self.exp_dir, event=kind)
            if kind == CONCLUDED_EVENT:
                payload["live"] = name in done[STARTED_EVENT]
            yield TriggerEvent(payload)
            done[kind].add(name)
            await asyncio.to_thread(ledger.record, self.exp_dir, name, marker["run"], kind)

    async def _folder_markers(self, done: dict[str, set[str]]) -> AsyncIterator[tuple[str, dict]]:
        """(kind, marker) of runs in ``<exp_dir>/runs`` not yet emitted, oldest first, forever."""
        runs_dir = Path(self.exp_dir) / RUNS_FOLDER
        reported: set[tuple[str, int]] = set()  # bad markers already logged, by (file, mtime)
        while True:
            pending = await asyncio.to_thread(marked_run_dirs, runs_dir, done)
            for kind, run_dir in pending:
                try:
                    marker = await asyncio.to_thread(read_folder_marker, kind, run_dir)
                except (MarkerError, OSError) as error:
                    self._report_once(reported, run_dir / MARKER_FILES[kind], error)
                    continue
                yield kind, marker
            await asyncio.sleep(self.poll_interval)

    def _report_once(self, reported: set, path: Path, error: Exception) -> None:
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            key = (str(path), 0)
        if key not in reported:
            reported.add(key)
            self.log.error("skipping run %s until its marker is fixed: %s", path.parent.name, error)

    async def _redis_markers(self) -> AsyncIterator[tuple[str, dict]]:
        """Markers from the Redis stream, from its start (the ledger drops replays), forever.

        Each blocking read runs in a worker thread with redis-py's synchronous client, so
        stopping the trigger never waits on a half-read reply: redis-py's asyncio client can
        swallow a cancellation that lands mid-read and then wait forever (seen here).
        """
        import redis
        from redis.exceptions import ConnectionError as RedisConnectionError

        block_ms = max(1, round(self.poll_interval * 1000))  # BLOCK 0 would mean forever
        client = redis.Redis.from_url(
            self.redis_url, socket_connect_timeout=10, socket_timeout=self.poll_interval + 30
        )
        last_id, backoff = "0", self.poll_interval
        try:
            while True:
                try:
                    reply: Any = await asyncio.to_thread(  # a list of (stream, messages) in RESP2
                        client.xread, {self.stream: last_id}, count=100, block=block_ms
                    )
                    backoff = self.poll_interval
                except (RedisConnectionError, OSError) as error:
                    self.log.warning(
                        "redis %s unreachable (%s); retrying in %.1f s", self.stream, error, backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30)
                    continue
                for _stream, messages in reply or []:
                    for message_id, fields in messages:
                        last_id = message_id
                        origin = f"redis stream {self.stream} message {message_id!r}"
                        kind = event_kind(fields)
                        if kind not in LEDGER_TABLES:
                            continue  # chunk events are followed per run (ChunkClosedTrigger)
                        try:
                            yield kind, stream_marker(kind, fields, origin)
                        except MarkerError as error:
                            self.log.error("skipping message: %s", error)
        finally:
            client.close()  # a read still running in its thread ends with a closed socket


MARKER_FILES = {CONCLUDED_EVENT: MARKER, STARTED_EVENT: STARTED}


def stream_marker(kind: str, fields: dict, origin: str) -> dict:
    """The validated marker dict of a Redis stream message of event ``kind``."""
    if kind == STARTED_EVENT:
        return started_from_stream_fields(fields, origin)
    return RunMarker.from_stream_fields(fields, origin).to_dict()


def read_folder_marker(kind: str, run_dir: Path) -> dict:
    """The validated ``kind`` marker of ``run_dir``; its run name must be the folder's."""
    marker = read_started(run_dir) if kind == STARTED_EVENT else read_marker(run_dir).to_dict()
    if marker is None or marker["run_name"] != run_dir.name:
        raise MarkerError(
            run_dir / MARKER_FILES[kind],
            f"run_name {marker and marker['run_name']!r} does not match its folder",
        )
    return marker


def marked_run_dirs(runs_dir: Path, done: dict[str, set[str]]) -> list[tuple[str, Path]]:
    """(kind, run folder) for every marker under ``runs_dir`` whose event is not in ``done``.

    Runs sort in run order (:func:`~kernels.io.marker.run_order`), a run's started event before
    its concluded one. A missing ``runs_dir`` is an experiment that has not started yet.
    """
    try:
        entries = sorted(os.scandir(runs_dir), key=lambda entry: run_order(entry.name))
    except FileNotFoundError:
        return []
    pending = []
    for entry in entries:
        if entry.name in done[CONCLUDED_EVENT] or not entry.is_dir():
            continue
        for kind in (STARTED_EVENT, CONCLUDED_EVENT):
            marked = os.path.exists(os.path.join(entry.path, MARKER_FILES[kind]))
            if marked and entry.name not in done[kind]:
                pending.append((kind, Path(entry.path)))
    return pending
