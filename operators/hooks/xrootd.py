"""Hook to one XRootD server folder: stat, adler32, rename, small reads/writes, third-party copy.

It drives the Debian client tools (``xrdfs``, ``xrdcp``) as subprocesses, so no compiled
bindings are needed and every call can be timed out and killed. Paths given to the methods are
relative to the hook's base folder and may not climb out of it.

A connection of type ``xrootd`` configures it: ``host``, ``port`` and ``schema`` (the base
folder on the server, e.g. ``/scratch/sfx``).

Third-party copies use HTTP-TPC (a WebDAV ``COPY`` to the destination, which pulls with its own
HTTP client and streams progress back) when the hook knows the CA of the servers' certificates
(``ca_file`` or ``SFXFLOW_XROOTD_CA``), and ``xrdcp --tpc only`` otherwise. Both keep the data
between the two servers; HTTP-TPC returns as soon as the copy ends, while the xroot client polls
a third-party copy every 2.5 s.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook

XRDFS = "/usr/bin/xrdfs"
XRDCP = "/usr/bin/xrdcp"

# Fail fast on a dead server instead of the client's default multi-minute reconnect window:
# retries with backoff are decided by the caller.
CLIENT_ENV = {
    "XRD_CONNECTIONRETRY": "1",
    "XRD_CONNECTIONWINDOW": "3",
    "XRD_STREAMERRORWINDOW": "5",
    "XRD_REQUESTTIMEOUT": "60",
}
_NOT_FOUND = re.compile(r"\[3011\]|no such file", re.IGNORECASE)
# Errors that repeating cannot fix: permission, bad request, bad argument.
_PERMANENT = re.compile(r"\[30(00|01|02|06|10|13)\]")


class XRootDError(RuntimeError):
    """An XRootD client call failed; ``transient`` says whether retrying may help."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


class XRootDNotFound(XRootDError):
    """The path does not exist on the server."""

    def __init__(self, message: str):
        super().__init__(message, transient=False)


class XRootDHook(BaseHook):
    """One folder on one XRootD server.

    Parameters
    ----------
    url : str
        ``root://host:port//base/folder`` (``root://host:port/`` for the server root).
    timeout : float
        Seconds allowed for a metadata call; copies get :meth:`copy_timeout`.
    ca_file : str, optional
        CA certificate of the servers (default ``$SFXFLOW_XROOTD_CA``); enables HTTP-TPC.
    """

    conn_name_attr = "xrootd_conn_id"
    default_conn_name = "xrootd_default"
    conn_type = "xrootd"
    hook_name = "XRootD"

    def __init__(self, url: str, timeout: float = 60.0, ca_file: str | None = None):
        super().__init__()
        self.server, self.base = split_root_url(url)
        self.timeout = timeout
        self.ca_file = ca_file or os.environ.get("SFXFLOW_XROOTD_CA") or None

    @classmethod
    def from_connection(cls, conn_id: str, **kwargs) -> XRootDHook:
        """Build the hook from an Airflow connection (host, port, schema = base folder)."""
        conn = cls.get_connection(conn_id)
        if not conn.host:
            raise ValueError(f"connection {conn_id!r}: host is required for XRootD")
        base = "/" + (conn.schema or "").strip("/")
        return cls(f"root://{conn.host}:{conn.port or 1094}/{base}", **kwargs)

    @property
    def url(self) -> str:
        return f"{self.server}/{self.base}"

    def path(self, relative: str) -> str:
        """Absolute server path of ``relative``, refused if it leaves the base folder."""
        full = posixpath.normpath(posixpath.join(self.base, relative))
        if full != self.base and not full.startswith(self.base.rstrip("/") + "/"):
            raise ValueError(f"path {relative!r} escapes the XRootD base folder {self.base}")
        return full

    def file_url(self, relative: str) -> str:
        return f"{self.server}/{self.path(relative)}"

    def https_url(self, relative: str) -> str:
        """The same file over the server's HTTPS protocol (same host and port)."""
        return "https://" + self.server.split("://", 1)[1] + self.path(relative)

    def size(self, relative: str) -> int | None:
        """Size in bytes of a file, ``None`` if it does not exist."""
        try:
            out = self._run([XRDFS, self.server, "stat", self.path(relative)], self.timeout)
        except XRootDNotFound:
            return None
        match = re.search(r"^Size:\s+(\d+)", out, re.MULTILINE)
        if not match:
            raise XRootDError(
                f"unexpected stat output for {self.file_url(relative)}: {out!r}", transient=False
            )
        return int(match.group(1))

    def adler32(self, relative: str) -> str:
        """Adler32 of a file as computed by the server (8 lowercase hex digits)."""
        out = self._run(
            [XRDFS, self.server, "query", "checksum", self.path(relative)], self.copy_timeout(None)
        )
        kind, _, value = out.strip().partition(" ")
        if kind != "adler32" or not re.fullmatch(r"[0-9a-fA-F]{1,8}", value):
            raise XRootDError(
                f"unexpected checksum reply for {self.file_url(relative)}: {out!r}", transient=False
            )
        return value.lower().zfill(8)

    def rename(self, relative_from: str, relative_to: str) -> None:
        """Rename within the server; replaces an existing target (a single rename on disk)."""
        self._run(
            [XRDFS, self.server, "mv", self.path(relative_from), self.path(relative_to)],
            self.timeout,
        )

    def remove(self, relative: str) -> None:
        """Delete a file; a missing file is fine."""
        try:
            self._run([XRDFS, self.server, "rm", self.path(relative)], self.timeout)
        except XRootDNotFound:
            pass

    def read_bytes(self, relative: str) -> bytes:
        """Whole content of a small file (markers, reports)."""
        return self._run(
            [XRDCP, "--nopbar", "--silent", self.file_url(relative), "-"], self.timeout, text=False
        )

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Create or replace a small file (parent folders are created)."""
        self._run(
            [XRDCP, "--nopbar", "--silent", "--force", "-", self.file_url(relative)],
            self.timeout,
            stdin=data,
        )

    def pull(
        self, source: XRootDHook, source_relative: str, relative: str, size: int | None = None
    ) -> None:
        """Third-party copy: this (destination) server pulls a file from ``source``'s server.

        Parent folders are created; an existing target is replaced. The data flows between the
        two servers only.
        """
        if self.ca_file and source.ca_file:
            self._http_pull(source, source_relative, relative, size)
            return
        self._run(
            [
                XRDCP,
                "--nopbar",
                "--silent",
                "--force",
                "--tpc",
                "only",
                source.file_url(source_relative),
                self.file_url(relative),
            ],
            self.copy_timeout(size),
        )

    def _http_pull(
        self, source: XRootDHook, source_relative: str, relative: str, size: int | None
    ) -> None:
        """HTTP-TPC: ``COPY`` with a ``Source`` header; the reply streams performance markers and
        ends with ``success: ...`` or ``failure: ...``."""
        self._run(
            [XRDFS, self.server, "mkdir", "-p", posixpath.dirname(self.path(relative))],
            self.timeout,
        )
        target = self.https_url(relative)
        try:
            with requests.request(
                "COPY",
                target,
                stream=True,
                verify=self.ca_file,
                timeout=(10, self.copy_timeout(size)),
                headers={"Source": source.https_url(source_relative), "Overwrite": "T"},
            ) as reply:
                last = ""
                for line in reply.iter_lines(decode_unicode=True):
                    # bytes when the reply names no encoding
                    text = line.decode(errors="replace") if isinstance(line, bytes) else line
                    last = text.strip() or last
                status = reply.status_code
        except requests.RequestException as error:
            raise XRootDError(
                f"HTTP third-party copy to {target} failed: {error}", transient=True
            ) from error
        if status >= 400 or not last.startswith("success"):
            self.remove(relative)  # the handler creates the target before it knows the pull fails
            message = f"HTTP third-party copy to {target} failed ({status}): {last}"
            if _NOT_FOUND.search(last):
                raise XRootDNotFound(message)
            raise XRootDError(message, transient=status >= 500 or last.startswith("failure"))

    @staticmethod
    def copy_timeout(size: int | None) -> float:
        """Seconds allowed to move (or checksum) ``size`` bytes: generous, at ≥ 20 MB/s plus setup."""
        return 120.0 + (size or 0) / 20e6

    def _run(
        self, command: list[str], timeout: float, stdin: bytes | None = None, text: bool = True
    ):
        try:
            done = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                timeout=timeout,
                env={**os.environ, **CLIENT_ENV},
            )
        except subprocess.TimeoutExpired as error:
            raise XRootDError(
                f"{' '.join(command[:3])}... timed out after {timeout:.0f} s", transient=True
            ) from error
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").replace("\x00", "").strip()
            summary = f"{os.path.basename(command[0])} {' '.join(command[1:])} failed (rc {done.returncode}): {message}"
            if _NOT_FOUND.search(message):
                raise XRootDNotFound(summary)
            raise XRootDError(summary, transient=not _PERMANENT.search(message))
        return done.stdout.decode() if text else done.stdout


def split_root_url(url: str) -> tuple[str, str]:
    """Split ``root://host:port//base`` into (``root://host:port``, ``/base``).

    Raises
    ------
    ValueError
        If ``url`` is not a ``root://`` or ``xroot://`` URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("root", "xroot") or not parts.hostname:
        raise ValueError(f"not an XRootD URL (root://host:port//path): {url!r}")
    base = posixpath.normpath("/" + parts.path.lstrip("/")) if parts.path.strip("/") else "/"
    return f"{parts.scheme}://{parts.netloc}", base
