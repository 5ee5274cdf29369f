"""Fake concluded runs for the data-movement tests (the real simulator lives in facility/)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kernels.io.marker import write_marker


def make_run(runs_dir: Path, run: int, sizes: list[int], conclude: bool = True) -> dict | None:
    """Write a fake run (random bytes, chunk and index names) and, if asked, its marker.

    Returns the marker, or None for a run left in progress.
    """
    run_dir = runs_dir / f"r{run:04d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    for chunk, size in enumerate(sizes):
        name = f"r{run:04d}-c{chunk:02d}" + (".h5" if chunk % 2 == 0 else ".idx.h5")
        (run_dir / name).write_bytes(os.urandom(size))
        (run_dir / name).chmod(0o644)
    return write_marker(run_dir, run).to_dict() if conclude else None


def shared_tmp_dir() -> Path:
    """A temporary folder the unprivileged xrootd user can traverse (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="sfxflow-xrd-", dir="/tmp"))
    base.chmod(0o755)
    return base


def make_live_chunk(runs_dir: Path, run: int, chunk: int, size: int) -> dict:
    """Write chunk ``chunk`` of a fake live run (chunk + index file of random bytes), closed."""
    from kernels.io.chunk_marker import write_chunk_marker

    run_dir = runs_dir / f"r{run:04d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    names = [f"r{run:04d}-c{chunk:02d}.h5", f"r{run:04d}-c{chunk:02d}.idx.h5"]
    for name, n in zip(names, (size, 64), strict=True):
        (run_dir / name).write_bytes(os.urandom(n))
        (run_dir / name).chmod(0o644)
    return write_chunk_marker(run_dir, run, chunk, events=4, files=names).to_dict()


def start_live_run(runs_dir: Path, run: int) -> dict:
    """Start a fake live run: its calibration snapshot, then ``STARTED.json``."""
    from kernels.io.chunk_marker import write_started

    run_dir = runs_dir / f"r{run:04d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "calibration.h5").write_bytes(os.urandom(256))
    for path in run_dir.iterdir():
        path.chmod(0o644)
    return write_started(run_dir, run, 120.0, files=["calibration.h5"])
