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
