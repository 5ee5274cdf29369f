"""Frames only the center holds: a run whose beamline-side folder is gone (raw data pruned
after publishing) is fetched through the SF API from ``<hpc_dir>/runs/<run>/`` into a local
cache bounded in bytes (least recently used runs go first).

The SF API downloads whole files only (no byte ranges), so a run comes whole: its marker,
index files, calibration snapshot and chunks; the run format's check then needs every chunk
anyway. Run names are checked by :func:`.frame_source.checked_run_name` before any path is made;
file names the center lists are taken only when they are plain names.

Settings: ``SFXFLOW_FRAME_CACHE`` (folder; default ``$AIRFLOW_HOME/sfxflow/frame-cache``, the
api-server's state folder) and ``SFXFLOW_FRAME_CACHE_BYTES`` (default 4 GiB).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from .frame_source import FrameNotFound, checked_run_name

CACHE_ENV, CACHE_BYTES_ENV = "SFXFLOW_FRAME_CACHE", "SFXFLOW_FRAME_CACHE_BYTES"
DEFAULT_CACHE_BYTES = 4 * 1024**3


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

    def folder(self, client, machine: str, hpc_runs_dir: str, run: str) -> Path:
        """The local copy of ``<hpc_runs_dir>/<run>``, downloaded on first use."""
        run = checked_run_name(run)
        place = hashlib.sha256(hpc_runs_dir.encode()).hexdigest()[:16]
        local = self.root / place / run
        with self._lock:
            if not local.is_dir():
                self._download(client, machine, f"{hpc_runs_dir}/{run}", local)
            os.utime(local)  # the folder's mtime is its last use
            self._evict(keep=local)
        return local

    def _download(self, client, machine: str, remote: str, local: Path) -> None:
        from sfapi_client.errors import NotFound, SfApiError

        try:
            entries = client.ls(machine, remote)
            names = [
                e["name"]
                for e in entries
                if e.get("perms", "-").startswith("-") and is_plain_name(e["name"])
            ]
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=local.parent, prefix=".fetch-"))
            try:
                for name in names:
                    (tmp / name).write_bytes(client.download(machine, f"{remote}/{name}"))
                os.replace(tmp, local)  # the run appears whole or not at all
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except NotFound:
            raise FrameNotFound(
                f"run {local.name}: no folder on the beamline side, nor at the center ({remote})"
            ) from None
        except (SfApiError, OSError) as exc:
            raise CenterUnavailable(
                f"run {local.name}: no folder on the beamline side, and the center could not "
                f"send {remote}: {exc}"
            ) from None

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
