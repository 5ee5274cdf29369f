"""Airflow event trigger: one event per concluded run of an experiment, for an ``AssetWatcher``.

Two sources, one code path after them: the experiment folder (default; ``<exp>/runs/*/``
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
            db.execute(
                "CREATE TABLE IF NOT EXISTS emitted (exp_dir TEXT NOT NULL, run_name TEXT NOT NULL,"
                " run INTEGER NOT NULL, emitted_at TEXT NOT NULL, PRIMARY KEY (exp_dir, run_name))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def emitted(self, exp_dir: str) -> set[str]:
        """Run names already emitted for ``exp_dir``."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT run_name FROM emitted WHERE exp_dir = ?", (exp_dir,))
            return {name for (name,) in rows}

    def record(self, exp_dir: str, run_name: str, run: int) -> None:
        """Remember that ``run_name`` of ``exp_dir`` was emitted (idempotent)."""
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR IGNORE INTO emitted (exp_dir, run_name, run, emitted_at) VALUES (?, ?, ?, ?)",
                (exp_dir, run_name, run, datetime.now(UTC).isoformat()),
            )


class RunConcludedTrigger(BaseEventTrigger):
    """Emit one ``TriggerEvent`` per concluded run, oldest run first, never twice.

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
    Event payload: ``{"run", "run_name", "files", "exp_dir", "concluded_at"}``. A run is
    recorded in the ledger right after its event is handed to the triggerer, so a crash in
    between can repeat an event (at least once) but never lose one.
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
        emitted = await asyncio.to_thread(ledger.emitted, self.exp_dir)
        markers = (
            self._folder_markers(emitted) if self.source == "folder" else self._redis_markers()
        )
        async for marker in markers:
            if marker.run_name in emitted:
                continue
            yield TriggerEvent(dict(marker.to_dict(), exp_dir=self.exp_dir))
            emitted.add(marker.run_name)
            await asyncio.to_thread(ledger.record, self.exp_dir, marker.run_name, marker.run)

    async def _folder_markers(self, emitted: set[str]) -> AsyncIterator[RunMarker]:
        """Markers of concluded, not yet emitted runs in ``<exp_dir>/runs``, oldest first, forever."""
        runs_dir = Path(self.exp_dir) / RUNS_FOLDER
        reported: set[tuple[str, int]] = set()  # bad markers already logged, by (run, mtime)
        while True:
            pending = await asyncio.to_thread(concluded_run_dirs, runs_dir, emitted)
            for run_dir in pending:
                try:
                    marker = await asyncio.to_thread(read_marker, run_dir)
                    if marker.run_name != run_dir.name:
                        raise MarkerError(
                            run_dir / MARKER,
                            f"run_name {marker.run_name!r} does not match its folder",
                        )
                except (MarkerError, OSError) as error:
                    self._report_once(reported, run_dir, error)
                    continue
                yield marker
            await asyncio.sleep(self.poll_interval)

    def _report_once(self, reported: set, run_dir: Path, error: Exception) -> None:
        try:
            key = (run_dir.name, (run_dir / MARKER).stat().st_mtime_ns)
        except OSError:
            key = (run_dir.name, 0)
        if key not in reported:
            reported.add(key)
            self.log.error("skipping run %s until its marker is fixed: %s", run_dir.name, error)

    async def _redis_markers(self) -> AsyncIterator[RunMarker]:
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
                        try:
                            yield RunMarker.from_stream_fields(fields, origin)
                        except MarkerError as error:
                            self.log.error("skipping message: %s", error)
        finally:
            client.close()  # a read still running in its thread ends with a closed socket


def concluded_run_dirs(runs_dir: Path, emitted: set[str]) -> list[Path]:
    """Run folders under ``runs_dir`` that hold a marker and are not in ``emitted``, oldest first.

    Runs sort in run order (:func:`~kernels.io.marker.run_order`). A missing ``runs_dir`` is
    an experiment that has not started yet: no runs.
    """
    try:
        entries = list(os.scandir(runs_dir))
    except FileNotFoundError:
        return []
    concluded = [
        Path(entry.path)
        for entry in entries
        if entry.name not in emitted
        and entry.is_dir()
        and os.path.exists(os.path.join(entry.path, MARKER))
    ]
    return sorted(concluded, key=lambda path: run_order(path.name))
