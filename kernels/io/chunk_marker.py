"""Live-run markers: the run has started, and one chunk of it is closed.

A run acquired live gets, in ``<exp>/runs/<run_name>/``:

* ``STARTED.json`` when acquisition begins (atomic)::

    {"run": 1, "run_name": "r0001", "started_at": "2026-12-01T09:50:00+00:00",
     "frame_rate_hz": 120.0, "files": [{"name": "calibration.h5", ...}]}

  ``files`` (optional) lists what the run needs before its first chunk (the calibration
  snapshot): a transfer delivers them before any chunk marker.

* ``r0001-c00.closed.json`` once chunk 0's files (chunk and index) are written, fsynced and
  closed (atomic), listing those files like the run marker does::

    {"run": 1, "run_name": "r0001", "chunk": 0, "events": 250,
     "files": [{"name": "r0001-c00.h5", ...}, {"name": "r0001-c00.idx.h5", ...}],
     "closed_at": "..."}

* ``CONCLUDED.json`` last, as for every run (:mod:`kernels.io.marker`).

The same order holds at the center: a transfer delivers a chunk's files before its chunk marker,
so a chunk marker present there means its files are complete. Standard library only, like the
run marker.

On a Redis stream the three travel in one stream, in order per run; the field ``event``
(:data:`STARTED_EVENT`, :data:`CHUNK_EVENT`, :data:`CONCLUDED_EVENT`) says which, and a message
without it is a run marker (the format before live runs).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernels.io.atomic import write_json
from kernels.io.marker import (
    MarkerError,
    MarkerFile,
    _text,
    adler32_file,
    check_files,
    check_run_name,
    is_count,
    run_name,
)

STARTED = "STARTED.json"
CHUNK_MARKER = re.compile(r"^(r\d{4,})-c(\d{2,})\.closed\.json$")
_CHUNK_KEYS = ("run", "run_name", "chunk", "events", "files", "closed_at")
EVENT_FIELD = "event"
STARTED_EVENT, CHUNK_EVENT, CONCLUDED_EVENT = "started", "chunk", "concluded"


def chunk_marker_name(name: str, chunk: int) -> str:
    """The marker file name of chunk ``chunk`` of run ``name``: ``r0001-c00.closed.json``."""
    return f"{name}-c{chunk:02d}.closed.json"


@dataclass(frozen=True)
class ChunkMarker:
    """A validated chunk-closed marker."""

    run: int
    run_name: str
    chunk: int
    events: int
    files: tuple[MarkerFile, ...]
    closed_at: str

    @classmethod
    def from_dict(cls, marker: Any, origin: str) -> ChunkMarker:
        """Check a decoded chunk marker; :class:`MarkerError` names ``origin`` and the field."""
        if not isinstance(marker, dict):
            raise MarkerError(origin, "chunk marker must be a JSON object")
        missing = set(_CHUNK_KEYS) - marker.keys()
        if missing:
            raise MarkerError(origin, f"chunk marker lacks {sorted(missing)}")
        for key in ("run", "chunk", "events"):
            if not is_count(marker[key]):
                raise MarkerError(origin, f"{key!r} must be a non-negative integer")
        return cls(
            marker["run"],
            check_run_name(marker["run_name"], origin),
            marker["chunk"],
            marker["events"],
            check_files(marker["files"], origin),
            str(marker["closed_at"]),
        )

    @property
    def marker_name(self) -> str:
        return chunk_marker_name(self.run_name, self.chunk)

    def to_dict(self) -> dict:
        return {
            "run": self.run,
            "run_name": self.run_name,
            "chunk": self.chunk,
            "events": self.events,
            "files": [f.to_dict() for f in self.files],
            "closed_at": self.closed_at,
        }

    def to_stream_fields(self) -> dict[str, str]:
        """Redis stream fields: ``event`` = chunk, one field per key, ``files`` as JSON text."""
        fields = {key: str(value) for key, value in self.to_dict().items() if key != "files"}
        return {EVENT_FIELD: CHUNK_EVENT, **fields, "files": json.dumps(self.to_dict()["files"])}

    @classmethod
    def from_stream_fields(cls, fields: dict, origin: str) -> ChunkMarker:
        """Inverse of :meth:`to_stream_fields` (bytes or text), validated."""
        text = {_text(key): _text(value) for key, value in fields.items()}
        try:
            counts = {key: int(text[key]) for key in ("run", "chunk", "events")}
            marker = dict(text, **counts, files=json.loads(text["files"]))
        except (KeyError, ValueError) as error:
            raise MarkerError(origin, f"bad chunk message ({error!r})") from error
        return cls.from_dict(marker, origin)


def event_kind(fields: dict) -> str:
    """Which event a Redis stream message carries; a message without ``event`` is a run marker."""
    for key, value in fields.items():
        if _text(key) == EVENT_FIELD:
            return _text(value)
    return CONCLUDED_EVENT


def started_to_stream_fields(marker: dict) -> dict[str, str]:
    """Redis stream fields of a run-started marker (``files`` as JSON text)."""
    fields = {key: str(value) for key, value in marker.items() if key != "files"}
    return {EVENT_FIELD: STARTED_EVENT, **fields, "files": json.dumps(marker.get("files", []))}


def started_from_stream_fields(fields: dict, origin: str) -> dict:
    """Inverse of :func:`started_to_stream_fields`, validated like :func:`read_started`."""
    text = {_text(key): _text(value) for key, value in fields.items()}
    text.pop(EVENT_FIELD, None)
    try:
        marker = dict(
            text,
            run=int(text["run"]),
            frame_rate_hz=float(text.get("frame_rate_hz", "0")),
            files=json.loads(text.get("files", "[]")),
        )
    except ValueError as error:
        raise MarkerError(origin, f"bad run-started message ({error!r})") from error
    return check_started(marker, origin)


def write_chunk_marker(run_dir, run_number: int, chunk: int, events: int, files) -> ChunkMarker:
    """Mark chunk ``chunk`` closed once its ``files`` (paths in ``run_dir``) are complete."""
    run_dir = Path(run_dir)
    paths = [run_dir / Path(p).name for p in files]
    entries = tuple(MarkerFile(p.name, p.stat().st_size, adler32_file(p)) for p in paths)
    marker = ChunkMarker(
        run_number, run_name(run_number), chunk, events, entries, datetime.now(UTC).isoformat()
    )
    write_json(run_dir / marker.marker_name, marker.to_dict())
    return marker


def read_chunk_markers(run_dir: str | os.PathLike) -> list[ChunkMarker]:
    """Every chunk marker in ``run_dir``, in chunk order; a malformed one raises MarkerError."""
    run_dir = Path(run_dir)
    markers = []
    for path in run_dir.iterdir():
        if CHUNK_MARKER.match(path.name):
            try:
                markers.append(ChunkMarker.from_dict(json.loads(path.read_bytes()), str(path)))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise MarkerError(path, f"not valid JSON ({error})") from error
    return sorted(markers, key=lambda m: m.chunk)


def write_started(run_dir, run_number: int, frame_rate_hz: float, files=()) -> dict:
    """Mark a run started (the DAQ's first act); return the marker.

    ``files`` (paths in ``run_dir``, already complete) are what the run needs before its first
    chunk, such as its calibration snapshot; they are listed with bytes and Adler-32.
    """
    run_dir = Path(run_dir)
    paths = [run_dir / Path(p).name for p in files]
    marker = {
        "run": run_number,
        "run_name": run_name(run_number),
        "started_at": datetime.now(UTC).isoformat(),
        "frame_rate_hz": float(frame_rate_hz),
        "files": [MarkerFile(p.name, p.stat().st_size, adler32_file(p)).to_dict() for p in paths],
    }
    write_json(run_dir / STARTED, marker)
    return marker


def check_started(marker: Any, origin: str) -> dict:
    """A run-started marker, checked; :class:`MarkerError` names ``origin`` and the field."""
    if not isinstance(marker, dict) or not is_count(marker.get("run")):
        raise MarkerError(origin, "run-started marker needs an integer 'run'")
    check_run_name(marker.get("run_name"), origin)
    files = marker.get("files") or []  # a run may need nothing before its first chunk
    return dict(marker, files=[f.to_dict() for f in check_files(files, origin)] if files else [])


def read_started(run_dir: str | os.PathLike) -> dict | None:
    """The run-started marker of ``run_dir``, or None for a run not acquired live."""
    path = Path(run_dir) / STARTED
    try:
        marker = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MarkerError(path, f"not valid JSON ({error})") from error
    return check_started(marker, str(path))
