"""``/utilities/ls|download|upload`` on a machine's filesystem, through the confined open path."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from .config import Account
from .filesystem import PathError, list_path, normalize, open_in_dir, os_error, resolve


def ls(root: Path, account: Account, path: str) -> list[dict]:
    """``ls -la`` entries of ``path`` (see :func:`~.filesystem.list_path`)."""
    return list_path(root, account, path)


def download(root: Path, account: Account, path: str, binary: bool, limit: int) -> tuple[str, bool]:
    """File contents as ``(text or base64, is_binary)``; files over ``limit`` bytes are refused.

    Raises
    ------
    PathError
        Not confined, missing, a directory, too large, or binary without ``binary``.
    """
    shown = normalize(path)
    host = resolve(root, account, path)
    try:
        fd = open_in_dir(host.parent, host.name, os.O_RDONLY)
    except OSError as exc:
        raise os_error(shown, exc) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise PathError(f"{shown}: Is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise PathError(f"{shown}: not a regular file")
        raise PathError(f"{shown}: File too large to download (limit {limit} bytes)")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if binary:
        return base64.b64encode(data).decode(), True
    try:
        return data.decode(), False
    except UnicodeDecodeError:
        raise PathError(f"{shown}: binary file; download with binary=true") from None


def upload(root: Path, account: Account, path: str, source: BinaryIO) -> str:
    """Write ``source`` to ``path`` through a fresh temp file (``O_EXCL|O_NOFOLLOW``) and a rename.

    Raises
    ------
    PathError
        Not confined, a directory, or no parent directory.
    """
    shown = normalize(path)
    host = resolve(root, account, path)
    if host.is_dir():
        raise PathError(f"{shown}: Is a directory")
    if not host.parent.is_dir():
        raise PathError(f"{shown}: No such file or directory")
    temp = f".upload-{secrets.token_hex(8)}"  # never a name someone could plant a link at
    try:
        fd = open_in_dir(host.parent, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out)
        os.replace(host.parent / temp, host)  # rename replaces a link at `host`, never follows
    except OSError as exc:
        (host.parent / temp).unlink(missing_ok=True)
        raise os_error(shown, exc) from None
    return shown
