"""Files that readers see whole or not at all (results, summaries, checkpoints, the run marker).

Every atomic write of the project goes through :func:`atomic_path`: the content is written to a
hidden temporary name beside the target (so a scan of the folder never mistakes it for the real
file), then renamed into place. How much survives a crash is chosen explicitly, per file:

``Durability.RENAME``
    Readers see the old file or the new one; a power cut may lose the new one (outputs that are
    written again by rerunning).
``Durability.FILE``
    The bytes are on disk before the rename (a checkpoint: what it says must be true).
``Durability.FULL``
    Bytes and the rename itself are on disk (results a checkpoint will point at).

Standard library only, so light modules (the run marker) can use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path


class Durability(Enum):
    """How much of an atomic write survives a crash (see the module docstring)."""

    RENAME = "rename"
    FILE = "file"
    FULL = "full"


def temporary_name(path: Path) -> Path:
    """The hidden temporary name a file is written under before it is renamed to ``path``."""
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def atomic_path(path, durability: Durability = Durability.RENAME) -> Iterator[Path]:
    """Yield a temporary path to write; on success make it ``path`` atomically.

    The writer (h5py, csv, a copy) must have closed the temporary file when the block ends.
    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if durability is not Durability.RENAME:
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durability is Durability.FULL:
        fsync_directory(path.parent)


def write_bytes(path, data: bytes, durability: Durability = Durability.RENAME) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path, durability) as tmp:
        tmp.write_bytes(data)
    return path


def write_json(path, data, durability: Durability = Durability.RENAME) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically; returns the path."""
    return write_bytes(path, json.dumps(data, indent=1).encode(), durability)


def fsync_file(path: Path) -> None:
    """Make the bytes of the (closed) file ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable."""
    fsync_file(path)
