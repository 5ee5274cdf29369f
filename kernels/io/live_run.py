"""Which chunks of a run being acquired can be read: those whose chunk marker is there.

A chunk marker at the center means its files are complete (:mod:`kernels.io.chunk_marker`);
the run marker means every file is. Chunks are taken in chunk order without gaps, so chunk
numbers (the ``chunk`` of every work item, DB row and reflection) are those of a post-run
:func:`~kernels.io.runformat.open_run` of the same run, whatever order the markers land in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kernels.io.chunk_marker import ChunkMarker, read_chunk_markers
from kernels.io.marker import MARKER, MarkerError
from kernels.io.runformat import Run, RunFormatError, index_files, open_chunks

INDEX_SUFFIX = ".idx.h5"


@dataclass(frozen=True)
class ReadyChunks:
    """The index files of the readable chunks, in chunk order, and whether the run concluded."""

    indexes: list[Path]
    concluded: bool


def marker_index(run_dir: Path, marker: ChunkMarker) -> Path:
    """The index file a chunk marker lists; :class:`MarkerError` names the marker if none."""
    names = [f.name for f in marker.files if f.name.endswith(INDEX_SUFFIX)]
    if len(names) != 1:
        raise MarkerError(
            run_dir / marker.marker_name,
            f"a chunk marker lists exactly one index file (*{INDEX_SUFFIX}), found {names}",
        )
    return run_dir / names[0]


def ready_chunks(run_dir) -> ReadyChunks:
    """The chunks of ``run_dir`` that can be read now.

    Once ``CONCLUDED.json`` is there, every chunk (a run acquired without chunk markers, too);
    before, chunks 0, 1, ... up to the first whose marker has not arrived; none while the
    folder does not exist yet.

    Raises
    ------
    MarkerError
        A chunk marker is not valid JSON, lacks a field, or lists no index file (named).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():  # a live job may start before the run's folder reaches the center
        return ReadyChunks([], False)
    if (run_dir / MARKER).exists():
        return ReadyChunks(index_files(run_dir), True)
    markers = {m.chunk: m for m in read_chunk_markers(run_dir)}
    indexes: list[Path] = []
    while len(indexes) in markers:
        indexes.append(marker_index(run_dir, markers[len(indexes)]))
    return ReadyChunks(indexes, False)


def open_ready(run_dir) -> Run:
    """The run with the chunks that can be read now (at least one: else RunFormatError)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFormatError(run_dir, "run directory does not exist")
    return open_chunks(run_dir, ready_chunks(run_dir).indexes)


def extend_run(run: Run) -> tuple[int, bool]:
    """Add the chunks that became readable since ``run`` was opened or last extended.

    Returns
    -------
    added, concluded : int, bool
        How many chunks were added, and whether the run has concluded (all of them are in).

    Raises
    ------
    RunFormatError
        The chunks already read are no longer the first ones of the run (a chunk was replaced).
    """
    ready = ready_chunks(run.dir)
    known = [chunk.path.name for chunk in run.chunks]
    listed = [_chunk_name(p) for p in ready.indexes[: len(known)]]
    if listed != known[: len(listed)]:
        raise RunFormatError(run.dir, f"chunks {known} are no longer the run's first {listed}")
    return run.add_chunks(ready.indexes[len(known) :]), ready.concluded


def _chunk_name(index: Path) -> str:
    return index.name[: -len(INDEX_SUFFIX)] + ".h5"
