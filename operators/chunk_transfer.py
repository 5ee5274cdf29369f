"""The live run's transfer: what a run needs first, each chunk as it closes, the run marker last.

Built on :mod:`operators.transfer` (same stores, same per-file verification, ``.part`` names,
retries and resume); the order is the contract of :mod:`kernels.io.chunk_marker` at the
center:

1. the files ``STARTED.json`` lists (the calibration snapshot), before any chunk;
2. per chunk, its files, then its chunk marker: a chunk marker at the center means its files
   are there and verified, so a chunk whose marker is already there is not looked at again;
3. at the run's end, whatever the run marker lists that no chunk marker at the center covers
   (a chunk whose event never came, ``STARTED.json``, the chunk markers themselves), then
   ``CONCLUDED.json`` itself, last, and ``TRANSFERRED.json`` for the whole run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass

from kernels.io.chunk_marker import CHUNK_MARKER, ChunkMarker, chunk_marker_name
from kernels.io.marker import MARKER, check_files, check_run_name
from operators.transfer import (
    REPORT_NAME,
    Store,
    TransferReport,
    copy_files,
    open_store,
    transfer_file,
    write_atomically,
)


def _stores(source, destination) -> tuple[Store, Store]:
    source_store, dest_store = open_store(source), open_store(destination)
    if type(source_store) is not type(dest_store):
        raise ValueError(
            f"source and destination must both be root:// URLs or both folders: {source}, {destination}"
        )
    return source_store, dest_store


def _marker_entry(source: Store, run_name: str, name: str) -> dict:
    """A marker file's own entry (bytes, adler32) as the source has it."""
    relative = f"{run_name}/{name}"
    return {"name": name, "bytes": source.size(relative), "adler32": source.adler32(relative)}


@dataclass(frozen=True)
class CopyOptions:
    """How files move: in flight at once, tries per file, first back-off (as ``transfer_run``)."""

    parallel_files: int = 4
    attempts: int = 5
    backoff_seconds: float = 1.0


def _copy(source, dest, run_name, entries, options: CopyOptions) -> list[dict]:
    if not entries:
        return []
    copied, _ = copy_files(
        source,
        dest,
        run_name,
        entries,
        options.parallel_files,
        options.attempts,
        options.backoff_seconds,
    )
    return copied


def _copy_marker(source, dest, run_name: str, name: str, options: CopyOptions) -> None:
    """Bring a marker file over, verified, after what it vouches for."""
    entry = _marker_entry(source, run_name, name)
    transfer_file(source, dest, run_name, entry, options.attempts, options.backoff_seconds)


def transfer_chunk(
    source,
    destination,
    run_name: str,
    marker: dict,
    options: CopyOptions = CopyOptions(),
) -> dict:
    """Bring one closed chunk (``marker``: its chunk marker dict) to the center, marker last.

    ``source`` and ``destination`` are the two ``runs`` folders, as for
    :func:`~operators.transfer.transfer_run`. Returns ``{"chunk", "bytes", "files_copied",
    "skipped"}``; ``skipped`` when the chunk marker was already at the center (nothing read).
    """
    check_run_name(run_name, f"transfer of {run_name}")
    source_store, dest_store = _stores(source, destination)
    name = chunk_marker_name(run_name, marker["chunk"])
    result = {"chunk": marker["chunk"], "bytes": 0, "files_copied": 0, "skipped": True}
    if dest_store.size(f"{run_name}/{name}") is not None:
        return result
    entries = [e.to_dict() for e in check_files(marker["files"], f"{run_name} chunk marker")]
    copied = _copy(source_store, dest_store, run_name, entries, options)
    _copy_marker(source_store, dest_store, run_name, name, options)
    return result | {
        "bytes": sum(e["bytes"] for e in copied),
        "files_copied": len(copied),
        "skipped": False,
    }


def transfer_started(
    source, destination, run_name: str, started: dict, options: CopyOptions = CopyOptions()
) -> int:
    """Bring what the run needs before its first chunk (``STARTED.json``'s files); bytes copied."""
    source_store, dest_store = _stores(source, destination)
    entries = (
        [e.to_dict() for e in check_files(started["files"], "STARTED.json")]
        if started.get("files")
        else []
    )
    return sum(e["bytes"] for e in _copy(source_store, dest_store, run_name, entries, options))


def finish_run(
    source,
    destination,
    run_name: str,
    concluded: dict,
    seconds: float,
    moved_bytes: int,
    options: CopyOptions = CopyOptions(),
    known: Collection[str] = (),
) -> TransferReport:
    """At the run's end: what no chunk at the center covers, then ``CONCLUDED.json``, last.

    ``seconds`` and ``moved_bytes`` are what the chunk transfers already took and copied, so
    ``TRANSFERRED.json`` reports the whole run. ``known``: the names of the chunk markers (and
    their files) the caller itself brought and verified; they are not looked at again, so the
    run's end costs the same whatever its length (each look is a round trip to the center).
    """
    started = time.monotonic()
    source_store, dest_store = _stores(source, destination)
    entries = [e.to_dict() for e in check_files(concluded["files"], f"{run_name}/{MARKER}")]
    known = set(known)
    unknown = [e for e in entries if e["name"] not in known]
    # chunks whose event never came go first, each with its marker after its files
    late = late_chunks(source_store, dest_store, run_name, unknown)
    chunk_moves = [transfer_chunk(source, destination, run_name, m, options) for m in late]
    covered = known | covered_files(source_store, dest_store, run_name, unknown)
    rest = [e for e in entries if e["name"] not in covered]
    copied = _copy(source_store, dest_store, run_name, rest, options)
    _copy_marker(source_store, dest_store, run_name, MARKER, options)
    copied_bytes = moved_bytes + sum(e["bytes"] for e in copied)
    copied_bytes += sum(m["bytes"] for m in chunk_moves)
    files_copied = len(copied) + sum(m["files_copied"] + 1 for m in chunk_moves)
    total = round(seconds + time.monotonic() - started, 3)
    report = TransferReport(
        run_name=run_name,
        bytes=copied_bytes,
        total_bytes=sum(e["bytes"] for e in entries),
        seconds=total,
        rate=round(copied_bytes / total, 1) if total > 0 else 0.0,
        files_copied=files_copied,
        files_skipped=len(entries) - files_copied,
        files=[e["name"] for e in entries],
        late_chunk_events=sum(m["events"] for m in late),
    )
    write_atomically(dest_store, f"{run_name}/{REPORT_NAME}", json.dumps(report.to_dict()).encode())
    return report


def late_chunks(source: Store, dest: Store, run_name: str, entries: list[dict]) -> list[dict]:
    """The chunk markers (as dicts, read at the source) the run lists but the center lacks."""
    late = []
    for entry in entries:
        relative = f"{run_name}/{entry['name']}"
        if CHUNK_MARKER.match(entry["name"]) and dest.size(relative) is None:
            late.append(ChunkMarker.from_dict(json.loads(source.read_bytes(relative)), relative))
    return [m.to_dict() for m in late]


def covered_files(source: Store, dest: Store, run_name: str, entries: list[dict]) -> set[str]:
    """Names among ``entries`` that a chunk marker present at the center vouches for (and the
    markers themselves): already verified there, not looked at again."""
    covered = set()
    for entry in entries:
        if not CHUNK_MARKER.match(entry["name"]):
            continue
        relative = f"{run_name}/{entry['name']}"
        if dest.size(relative) != entry["bytes"]:
            continue
        marker = ChunkMarker.from_dict(json.loads(dest.read_bytes(relative)), relative)
        covered |= {f.name for f in marker.files} | {entry["name"]}
    return covered
