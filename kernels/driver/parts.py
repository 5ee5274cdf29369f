"""Rank-local result caches and the parts they are published as.

Each worker keeps its full results in a rank-local cache file (node-local disk, as a burst
buffer would be); at the end of a session it publishes the cache into ``<out>/parts/``, where
rank 0 reads every part back to assemble the run's outputs.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from kernels.io.atomic import Durability, atomic_path
from kernels.io.checkpoint import Checkpoint
from kernels.resultsdb.logger import ImageRow
from kernels.stages.pipeline import ImageResult

PARTS_DIR = "parts"
Record = tuple[ImageRow, ImageResult]
log = logging.getLogger(__name__)


class ResultCache:
    """Rank-local, append-only stream of pickled (ImageRow, ImageResult) records."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb")
        self.records = 0

    def append(self, row: ImageRow, result: ImageResult) -> None:
        self.records += 1
        pickle.dump(
            (row, replace(result, spots=None)), self._file, protocol=pickle.HIGHEST_PROTOCOL
        )

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def publish(self, dest: Path) -> bool:
        """Copy the cache to shared storage atomically, drop the local copy; False if it was empty.

        The checkpoint will say these items are done: their data and the rename must be on disk.
        """
        self.sync()
        self._file.close()
        if not self.records:
            self.path.unlink()
            return False
        with atomic_path(dest, Durability.FULL) as tmp:
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        if self.path.resolve() != dest.resolve():
            self.path.unlink()
        return True


class PartError(Exception):
    """A published part that cannot be read whole (missing, empty, truncated or corrupt)."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"part {self.path}: {problem}")


def read_part(path: Path) -> Iterator[Record]:
    """Yield the (ImageRow, ImageResult) records of a published cache file (our own files).

    Raises
    ------
    PartError
        The file is missing or empty, or ends inside a record (e.g. torn by a crash).
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise PartError(path, f"unreadable ({exc.strerror or exc})") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if not size:
            raise PartError(path, "empty (published parts hold at least one record)")
        while handle.tell() < size:
            offset = handle.tell()
            try:
                record = pickle.load(handle)
            except Exception as exc:  # a torn pickle fails in many ways (EOFError, ...)
                raise PartError(
                    path,
                    f"truncated or corrupt at byte {offset} of {size} "
                    f"({type(exc).__name__}: {exc})",
                ) from None
            yield record


def drop_unreadable_parts(out: Path, checkpoint: Checkpoint) -> None:
    """Forget parts that do not read whole, and the finished items found in no readable part.

    Those items are processed again, so a part torn by a crash costs time, never images.
    A dropped part is kept as ``<name>.corrupt`` for inspection.
    """
    found, readable = set(), []
    for part in checkpoint.parts:
        try:
            found |= {(row.chunk, row.event) for row, _ in read_part(out / part)}
        except PartError as exc:
            log.error("%s; its images are processed again", exc)
            if exc.path.exists():
                os.replace(exc.path, exc.path.with_name(exc.path.name + ".corrupt"))
            continue
        readable.append(part)
    lost = checkpoint.done - found
    if lost:
        log.error(
            "%d finished images of run %s are in no readable part; processing them again",
            len(lost),
            checkpoint.run,
        )
    checkpoint.parts = readable
    checkpoint.done -= lost


def finished_records(out: Path, checkpoint: Checkpoint) -> Iterator[Record]:
    """(row, result) of every finished item, once each, from the published parts."""
    seen = set()
    for part in checkpoint.parts:
        for row, result in read_part(out / part):
            key = (row.chunk, row.event)
            if key in checkpoint.done and key not in seen:
                seen.add(key)
                yield row, result
