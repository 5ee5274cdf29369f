"""Frames only the center holds: a run whose beamline-side folder is gone (raw data pruned
after publishing) is fetched through the SF API from ``<hpc_dir>/runs/<run>/`` into a local
cache bounded in bytes (least recently used runs go first).

The SF API downloads whole files only (no byte ranges), so the unit is a file: first the run's
small files (marker, index files, calibration snapshot) into a hidden folder renamed into
place; then each chunk when an event of it is asked for, into a hidden file renamed into
place; every file checked against the marker's bytes and adler32. The run is opened with
``open_run(partial=True)``. A chunk the center will not send (a real one, 0.5-2 GB, is far over
the SF API's download limit) has the asked event extracted at the center instead
(:func:`fetch_event`: ``run_command`` runs :mod:`kernels.io.event_file` into a hidden file of
the run's center folder, which is downloaded, checked, kept as ``<chunk>.e<event>.h5`` and
removed there); the partial run reads it in place of its chunk. Run names are checked by
:func:`.frame_source.checked_run_name` before any path is made; file names the center lists
are taken only when they are plain names; the command's other words are integers, all quoted.

A small file the beamline side holds byte for byte (same name, size and Adler-32 as the run's
marker lists, e.g. the calibration snapshot when ``<exp>/calib/calibration.h5`` has not changed
since the run) is copied from there instead of downloaded: a 1 Mpix snapshot (9.4 MB) is over
the SF API's default 8 MiB download limit, and the copy is quicker anyway.

Settings: ``SFXFLOW_FRAME_CACHE`` (folder; default ``$AIRFLOW_HOME/sfxflow/frame-cache``, the
api-server's state folder) and ``SFXFLOW_FRAME_CACHE_BYTES`` (default 4 GiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from kernels.io.event_file import check_event_file
from kernels.io.marker import MARKER, MarkerFile, adler32_file, adler32_hex, read_marker
from kernels.io.runformat import RunFormatError, chunk_events, chunk_names, event_file_name

from .frame_source import FrameNotFound, checked_run_name

CACHE_ENV, CACHE_BYTES_ENV = "SFXFLOW_FRAME_CACHE", "SFXFLOW_FRAME_CACHE_BYTES"
DEFAULT_CACHE_BYTES = 4 * 1024**3
EXTRACT_EVENT = ("python", "-m", "kernels.io.event_file")  # = python -m kernels extract-event


class CenterUnavailable(RuntimeError):
    """The center cannot be asked (down, refusing, no connection configured): a 503."""


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


class CenterRunCache:
    """Runs downloaded from the center, ``<root>/<hash of the center folder>/<run>``, at most
    ``max_bytes`` together (a run larger than that alone is still kept while it is the newest)."""

    def __init__(self, root: Path, max_bytes: int):
        self.root, self.max_bytes = Path(root), max_bytes
        self._lock = threading.Lock()
        self.over_cap: set[str] = set()  # center chunks refused whole: their events extracted

    def folder(
        self,
        client,
        machine: str,
        hpc_runs_dir: str,
        run: str,
        chunks: Iterable[int] = (),
        local_copies: Iterable[Path] = (),
        events: Iterable[tuple[int, int]] = (),
    ) -> Path:
        """The local copy of ``<hpc_runs_dir>/<run>``: its small files, downloaded on first
        use (or copied from ``local_copies``, files on this side that may be identical to ones
        the run's marker lists), of its chunks those in ``chunks`` and those of ``events``
        ((chunk, event) pairs); of a chunk the center cannot send, those events extracted."""
        run = checked_run_name(run)
        place = hashlib.sha256(hpc_runs_dir.encode()).hexdigest()[:16]
        local = self.root / place / run
        remote = f"{hpc_runs_dir}/{run}"
        wanted = {(int(c), int(e)) for c, e in events}
        with self._lock, center_errors(run, remote):
            if not local.is_dir():
                self._download_run(client, machine, remote, local, tuple(local_copies))
            names = chunk_names(local)
            for chunk in sorted(set(chunks) | {c for c, _ in wanted}):
                if not 0 <= chunk < len(names):
                    raise FrameNotFound(f"run {run} has no chunk {chunk} ({len(names)} chunks)")
                of_chunk = sorted(e for c, e in wanted if c == chunk)
                if of_chunk and f"{remote}/{names[chunk]}" in self.over_cap:
                    self._extract(client, machine, remote, local, chunk, of_chunk)
                    continue
                try:
                    self._download_chunk(client, machine, remote, local, names[chunk])
                except CenterUnavailable:
                    if not of_chunk:
                        raise
                    self._extract(client, machine, remote, local, chunk, of_chunk)
                    self.over_cap.add(f"{remote}/{names[chunk]}")  # not tried again
            os.utime(local)  # the folder's mtime is its last use
            self._evict(keep=local)
        return local

    def _extract(
        self, client, machine: str, remote: str, local: Path, chunk: int, events: list[int]
    ) -> None:
        """Events of a chunk the center cannot send whole: each extracted there, downloaded,
        checked and renamed into place (:func:`fetch_event`), unless already here."""
        name, n_events = chunk_names(local)[chunk], chunk_events(local)[chunk]
        for event in events:
            if not 0 <= event < n_events:
                raise FrameNotFound(
                    f"run {local.name} has no event {event} in chunk {chunk} ({n_events} events)"
                )
            target = local / event_file_name(name, event)
            if not (local / name).exists() and not target.exists():
                fetch_event(client, machine, remote, chunk, event, target)

    def _download_run(
        self, client, machine: str, remote: str, local: Path, local_copies: tuple[Path, ...]
    ) -> None:
        """Every plain file of the run but its chunks, whole or not at all; the marker first,
        so a file it lists that ``local_copies`` holds byte for byte is copied, not fetched."""
        entries = client.ls(machine, remote)
        sizes = {
            e["name"]: e.get("size")
            for e in entries
            if e.get("perms", "-").startswith("-")
            and is_plain_name(e["name"])
            and not is_chunk(e["name"])
        }
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=local.parent, prefix=".fetch-"))
        try:
            listed: dict[str, MarkerFile] = {}
            if MARKER in sizes:
                marker = download_file(client, machine, f"{remote}/{MARKER}", sizes.pop(MARKER))
                (tmp / MARKER).write_bytes(marker)
                listed = {f.name: f for f in read_marker(tmp).files}
            for name, size in sizes.items():
                same = identical_copy(listed.get(name), local_copies)
                if same is not None:
                    shutil.copyfile(same, tmp / name)
                else:
                    data = download_file(client, machine, f"{remote}/{name}", size)
                    (tmp / name).write_bytes(data)
            if listed:
                for name in set(sizes) & set(listed):
                    check_against_marker(local.name, (tmp / name).read_bytes(), listed[name])
            os.replace(tmp, local)  # the run appears whole or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _download_chunk(self, client, machine: str, remote: str, local: Path, name: str) -> None:
        """One chunk, checked against the run marker, renamed into place once whole."""
        target = local / name
        if target.exists():
            return
        listed = {f.name: f for f in read_marker(local).files}
        if name not in listed:
            raise FrameNotFound(f"run {local.name}: its marker lists no chunk {name}")
        data = download_file(client, machine, f"{remote}/{name}", listed[name].bytes)
        check_against_marker(local.name, data, listed[name])
        tmp = local / f".fetch-{name}"
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def _evict(self, keep: Path) -> None:
        runs = sorted(
            (p for p in self.root.glob("*/*") if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
        )
        sizes = {p: folder_bytes(p) for p in runs}
        total = sum(sizes.values())
        for old in runs:
            if total <= self.max_bytes:
                break
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)
                total -= sizes[old]


def extract_command(remote_run: str, out: str, chunk: int, event: int) -> str:
    """The center's command extracting one event: every word quoted, the numbers integers."""
    numbers = ["--chunk", str(int(chunk)), "--event", str(int(event))]
    return shlex.join([*EXTRACT_EVENT, remote_run, out, *numbers])


def fetch_event(client, machine: str, remote: str, chunk: int, event: int, target: Path) -> None:
    """One event of the center's run ``remote``, extracted there into a hidden file of its own
    in the run's folder, downloaded, checked against the size and Adler-32 the command printed
    and against the event asked for, renamed into place; the center's file is removed after."""
    from sfapi_client.errors import NotFound, SfApiError

    scratch = f"{remote}/.extract-{uuid.uuid4().hex}.h5"
    asked = f"event {event} of chunk {chunk} of {remote}"
    try:
        printed = client.run_command(machine, extract_command(remote, scratch, chunk, event))
        data = download_file(client, machine, scratch)
    except NotFound:
        raise
    except SfApiError as exc:
        raise CenterUnavailable(f"the center could not extract {asked}: {exc}") from None
    finally:
        with suppress(SfApiError):  # a center gone meanwhile keeps a hidden file, never shown
            client.run_command(machine, shlex.join(["rm", "-f", scratch]))
    check_printed(asked, data, printed)
    tmp = target.with_name(f".fetch-{target.name}")
    tmp.write_bytes(data)
    try:
        check_event_file(tmp, target.parent.name, chunk, event)
    except RunFormatError as exc:
        tmp.unlink()
        raise CenterUnavailable(f"the center sent other than {asked}: {exc}") from None
    os.replace(tmp, target)


def check_printed(asked: str, data: bytes, printed: str) -> None:
    """The downloaded bytes must be the file the extraction wrote (its printed size, Adler-32)."""
    lines = printed.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        said = {}
    if len(data) != said.get("bytes") or adler32_hex(zlib.adler32(data)) != said.get("adler32"):
        raise CenterUnavailable(
            f"the center sent {len(data)} bytes for {asked}, not the file its extraction "
            f"reported ({printed.strip()[-200:]!r}); not kept"
        )


def is_chunk(name: str) -> bool:
    """Whether ``name`` is a chunk file (``r0001-c00.h5``; fetched only when needed)."""
    return re.fullmatch(r".+-c\d+\.h5", name) is not None


def identical_copy(listed: MarkerFile | None, candidates: Iterable[Path]) -> Path | None:
    """The candidate with the name, size and Adler-32 the marker lists, if any."""
    if listed is None:
        return None
    for path in candidates:
        if (
            path.name == listed.name
            and path.is_file()
            and path.stat().st_size == listed.bytes
            and adler32_file(path) == listed.adler32
        ):
            return path
    return None


def check_against_marker(run: str, data: bytes, listed: MarkerFile) -> None:
    """A fetched file must be the one the run's marker lists (size and Adler-32)."""
    if len(data) != listed.bytes or adler32_hex(zlib.adler32(data)) != listed.adler32:
        raise CenterUnavailable(
            f"run {run}: the center sent {listed.name} other than its marker says "
            f"({len(data)} bytes, marker {listed.bytes}); not kept"
        )


def download_file(client, machine: str, path: str, size=None) -> bytes:
    """One file from the center; a refusal names the file (and its size when known)."""
    from sfapi_client.errors import NotFound, SfApiError

    try:
        return client.download(machine, path)
    except NotFound:
        raise
    except SfApiError as exc:
        mib = f" ({int(size) / 2**20:.1f} MiB)" if size else ""
        raise CenterUnavailable(
            f"the center could not send {path}{mib}: {exc}. A file over the SF API's download "
            "limit can be shown only where the run's files are readable (the beamline side)"
        ) from None


@contextmanager
def center_errors(run: str, remote: str) -> Iterator[None]:
    """The center's answers as the viewer's errors: no such run (404) or cannot send (503)."""
    from sfapi_client.errors import NotFound, SfApiError

    try:
        yield
    except NotFound:
        raise FrameNotFound(
            f"run {run}: no folder on the beamline side, nor at the center ({remote})"
        ) from None
    except (SfApiError, OSError) as exc:
        raise CenterUnavailable(
            f"run {run}: no folder on the beamline side, and the center could not "
            f"send {remote}: {exc}"
        ) from None


def is_plain_name(name: str) -> bool:
    """A file name of the folder itself: no separator, not hidden, not ``.``/``..``."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def cache_from_environment() -> CenterRunCache:
    """The cache the settings name (read when the app first needs it)."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        from airflow.configuration import AIRFLOW_HOME

        root = str(Path(AIRFLOW_HOME) / "sfxflow" / "frame-cache")
    try:
        max_bytes = int(os.environ.get(CACHE_BYTES_ENV, DEFAULT_CACHE_BYTES))
    except ValueError:
        raise CenterUnavailable(f"{CACHE_BYTES_ENV} must be a number of bytes") from None
    return CenterRunCache(Path(root), max_bytes)


def center_client(conn_id: str = "sfapi_default"):
    """An SF API client of the Airflow connection, or :class:`CenterUnavailable` saying why."""
    from operators.hooks.sfapi import SfApiHook

    try:
        return SfApiHook(conn_id, retries=1, timeout=20.0).get_client()
    except Exception as exc:  # AirflowNotFoundException, bad credentials file, ...
        raise CenterUnavailable(
            f"no SF API connection {conn_id!r} to ask the center: {exc}"
        ) from None
