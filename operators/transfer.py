"""The transfer step: move one concluded run to the HPC center, verified, atomic, resumable.

``transfer_run`` copies the files of a run from ``<source>/<run_name>/`` to
``<destination>/<run_name>/`` either by XRootD third-party copy (both ends ``root://`` URLs; the
destination server pulls) or, as the embedded default, between two local folders. Both paths
give the same guarantees:

* each file goes to ``.<name>.part``, its adler32 is compared with the marker's, and only then is
  it renamed to its final name: no half or unverified file ever carries a final name;
* a file already present under its final name with the right checksum is skipped (resume after
  a crash; a corrupted file is copied again);
* transient errors (server down, timeouts) are retried with exponential backoff; a missing
  source file or a source whose size or checksum disagrees with the marker fails at once, naming
  the file;
* files move in parallel (bounded thread pool); at the end ``TRANSFERRED.json`` records bytes,
  seconds and rate.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from kernels.io.marker import (
    MARKER,
    RunMarker,
    adler32_file,
    adler32_hex,
    check_files,
    check_run_name,
)
from kernels.resultsdb import ResultsDB
from operators.hooks.xrootd import XRootDError, XRootDHook
from operators.pipeline.beamtime import Beamtime

REPORT_NAME = "TRANSFERRED.json"
CHUNK_SIZE = 8 * 1024 * 1024  # bytes read and checksummed at a time


class TransferError(RuntimeError):
    """A run could not be transferred; the message names the file and the reason."""


class SourceFileMissing(TransferError):
    """A file listed in the marker is not at the source."""


class ChecksumMismatch(TransferError):
    """Bytes disagree with the marker (size or adler32) at the source or after copying."""


@dataclass
class TransferReport:
    """Outcome of :func:`transfer_run`.

    ``bytes`` and ``rate`` (bytes per second) count what this call copied; ``total_bytes`` is
    the size of the whole run, so a resumed or repeated transfer still tells the run's size.
    """

    run_name: str
    bytes: int
    total_bytes: int
    seconds: float
    rate: float
    files_copied: int
    files_skipped: int
    files: list[str] = field(default_factory=list)
    late_chunk_events: int = 0  # a live run's end: events of the chunks whose event never came

    def to_dict(self) -> dict:
        return asdict(self)


class Store(Protocol):
    """A folder at one end of a transfer (an :class:`XRootDHook` or a :class:`LocalFolder`)."""

    def size(self, relative: str) -> int | None: ...
    def adler32(self, relative: str) -> str: ...
    def rename(self, relative_from: str, relative_to: str) -> None: ...
    def remove(self, relative: str) -> None: ...
    def read_bytes(self, relative: str) -> bytes: ...
    def write_bytes(self, relative: str, data: bytes) -> None: ...
    def pull(
        self, source, source_relative: str, relative: str, size: int | None = None
    ) -> str | None: ...


class LocalFolder:
    """A plain folder, with the same interface as :class:`XRootDHook`.

    Parameters
    ----------
    root : path
        The folder; relative paths may not leave it.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def path(self, relative: str) -> Path:
        full = (self.root / relative).resolve()
        if full != self.root and self.root not in full.parents:
            raise ValueError(f"path {relative!r} escapes the folder {self.root}")
        return full

    def size(self, relative: str) -> int | None:
        try:
            return self.path(relative).stat().st_size
        except FileNotFoundError:
            return None

    def adler32(self, relative: str) -> str:
        return adler32_file(self.path(relative))

    def rename(self, relative_from: str, relative_to: str) -> None:
        os.replace(self.path(relative_from), self.path(relative_to))

    def remove(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)

    def read_bytes(self, relative: str) -> bytes:
        return self.path(relative).read_bytes()

    def write_bytes(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def pull(
        self, source: LocalFolder, source_relative: str, relative: str, size: int | None = None
    ) -> str:
        """Copy a file from ``source`` and return the adler32 of the bytes written (one pass).

        The data is flushed to disk before returning, so a later rename never exposes a file
        whose content is not yet durable.
        """
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        value = 1
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        with open(source.path(source_relative), "rb") as reader, open(target, "wb") as writer:
            while count := reader.readinto(buffer):
                value = zlib.adler32(view[:count], value)
                writer.write(view[:count])
            writer.flush()
            os.fsync(writer.fileno())
        return adler32_hex(value)


def open_store(location: str | os.PathLike) -> XRootDHook | LocalFolder:
    """A ``root://`` URL gives an :class:`XRootDHook`, anything else a :class:`LocalFolder`."""
    text = os.fspath(location)
    if text.startswith(("root://", "xroot://")):
        return XRootDHook(text)
    return LocalFolder(text)


def load_marker(source: str | os.PathLike, run_name: str) -> dict:
    """Read the run's ``CONCLUDED.json`` from ``<source>/<run_name>/`` (either kind of store)."""
    store = open_store(source)
    relative = f"{run_name}/{MARKER}"
    return RunMarker.from_json(store.read_bytes(relative), f"{source}/{relative}").to_dict()


def transfer_run(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    run_name: str,
    files: list[dict],
    parallel_files: int = 4,
    attempts: int = 5,
    backoff_seconds: float = 1.0,
) -> TransferReport:
    """Copy the files of ``run_name`` from ``<source>/<run_name>`` to ``<destination>/<run_name>``.

    Parameters
    ----------
    source, destination : str or path
        Both ``root://host:port//folder`` URLs (XRootD third-party copy, the destination pulls)
        or both local folders. The source is the experiment's ``runs`` folder.
    run_name : str
        Run folder name, e.g. ``r0001``.
    files : list of dict
        The marker's ``files``: ``{"name", "bytes", "adler32"}`` each.
    parallel_files : int
        Files in flight at once.
    attempts : int
        Tries per file for transient errors (and for a copy that arrives corrupted).
    backoff_seconds : float
        Wait before the second try; doubles for each further try.

    Returns
    -------
    TransferReport

    Raises
    ------
    SourceFileMissing, ChecksumMismatch
        At once, naming the file.
    TransferError
        When a file still fails after ``attempts`` tries.
    ValueError
        For mixed or malformed locations or a malformed file list.
    """
    if parallel_files < 1 or attempts < 1:
        raise ValueError("parallel_files and attempts must be at least 1")
    origin = f"transfer of {run_name}"
    check_run_name(run_name, origin)
    entries = [entry.to_dict() for entry in check_files(files, origin)]
    source_store, dest_store = open_store(source), open_store(destination)
    if type(source_store) is not type(dest_store):
        raise ValueError(
            f"source and destination must both be root:// URLs or both folders: {source}, {destination}"
        )
    started = time.monotonic()
    copied, skipped = copy_files(
        source_store,
        dest_store,
        run_name,
        entries,
        parallel_files,
        attempts,
        backoff_seconds,
    )
    seconds = round(time.monotonic() - started, 3)  # the rate is computed from what is reported
    copied_bytes = sum(entry["bytes"] for entry in copied)
    report = TransferReport(
        run_name=run_name,
        bytes=copied_bytes,
        total_bytes=sum(entry["bytes"] for entry in entries),
        seconds=seconds,
        rate=round(copied_bytes / seconds, 1) if seconds > 0 else 0.0,
        files_copied=len(copied),
        files_skipped=skipped,
        files=[entry["name"] for entry in entries],
    )
    write_atomically(dest_store, f"{run_name}/{REPORT_NAME}", json.dumps(report.to_dict()).encode())
    return report


def copy_files(
    source: Store,
    dest: Store,
    run_name: str,
    files: list[dict],
    parallel_files: int,
    attempts: int,
    backoff_seconds: float,
) -> tuple[list[dict], int]:
    """Bring every file over in a bounded pool; return (entries copied, number already there).

    On the first error the files not yet started are cancelled, those in flight finish, then
    the error is raised.
    """
    copied: list[dict] = []
    skipped = 0
    errors: list[Exception] = []
    with ThreadPoolExecutor(max_workers=min(parallel_files, len(files))) as pool:
        futures = {
            pool.submit(
                transfer_file, source, dest, run_name, entry, attempts, backoff_seconds
            ): entry
            for entry in files
        }
        for future in as_completed(futures):
            try:
                was_copied = future.result()
            except Exception as error:  # collected: let files in flight finish, then fail
                errors.append(error)
                for pending in futures:
                    pending.cancel()
                continue
            if was_copied:
                copied.append(futures[future])
            else:
                skipped += 1
    if errors:
        raise errors[0]
    return copied, skipped


def transfer_file(
    source: Store, dest: Store, run_name: str, entry: dict, attempts: int, backoff_seconds: float
) -> bool:
    """Bring one file to ``<dest>/<run_name>/<name>`` verified; return False if it already was.

    See :func:`transfer_run` for the guarantees and errors.
    """
    name, expected = entry["name"], entry["adler32"]
    final, part = f"{run_name}/{name}", f"{run_name}/.{name}.part"
    for attempt in range(1, attempts + 1):
        try:
            if dest.size(final) == entry["bytes"] and dest.adler32(final) == expected:
                return False
            check_source(source, final, entry)
            written = dest.pull(source, final, part, entry["bytes"])
            got = written or dest.adler32(part)
            if got == expected:
                dest.rename(part, final)
                return True
            dest.remove(part)
            if source.adler32(final) != expected:
                raise ChecksumMismatch(
                    f"{name}: source adler32 differs from the marker's {expected}"
                )
            failure = f"{name}: copy arrived with adler32 {got}, expected {expected}"
        except XRootDError as error:
            if not error.transient:
                raise TransferError(f"{name}: {error}") from error
            failure = f"{name}: {error}"
        if attempt < attempts:
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    raise TransferError(f"{failure} (gave up after {attempts} tries)")


def check_source(source: Store, relative: str, entry: dict) -> None:
    """Fail at once if the source file is missing or its size disagrees with the marker."""
    size = source.size(relative)
    if size is None:
        raise SourceFileMissing(
            f"{entry['name']}: listed in the marker but missing at the source ({relative})"
        )
    if size != entry["bytes"]:
        raise ChecksumMismatch(
            f"{entry['name']}: source has {size} bytes, the marker says {entry['bytes']}"
        )


def write_atomically(store: Store, relative: str, data: bytes) -> None:
    """Write a small file under a temporary name, then rename it into place."""
    folder, name = relative.rsplit("/", 1)
    temporary = f"{folder}/.{name}.part"
    store.write_bytes(temporary, data)
    store.rename(temporary, relative)


def transfer_run_files(bt: Beamtime, info: dict) -> dict:
    """The ``transfer`` task of ``sfx_run``: copy the run's files (as its marker lists them, from
    ``prepare``'s ``info``) to the center and record the transfer in the results DB."""
    report = transfer_run(
        f"{bt.transfer_source}/runs",
        f"{bt.transfer_dest}/runs",
        info["run"],
        info["files"],
        parallel_files=bt.transfer_parallel_files,
    )
    with ResultsDB(bt.results_db) as db:
        db.record_transfer(info["run_id"], report.total_bytes, report.seconds, report.rate)
    return report.to_dict()
