"""The run marker module: one validator, dataclasses and wire formats, and no heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from kernels.io.marker import (
    MARKER,
    MarkerError,
    MarkerFile,
    RunMarker,
    adler32_file,
    chunk_name,
    read_marker,
    run_name,
    run_order,
    write_marker,
)

REPO = Path(__file__).resolve().parents[3]
LIGHT_IMPORTS = {
    "the marker module": "import kernels.io.marker",
    "the run-concluded trigger": "import operators.triggers.run_concluded",
    "the event DAG": "import runpy; runpy.run_path('dags/sfx_run_events.py')",
}


@pytest.mark.parametrize("what", sorted(LIGHT_IMPORTS))
def test_no_h5py_or_numpy_behind_the_marker(what):
    """The triggerer and every parse of the event DAG stay free of the kernels' science stack."""
    check = (
        f"{LIGHT_IMPORTS[what]}\nimport sys\n"
        "print(sorted(m for m in ('h5py', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", f"{what} imports {done.stdout}"


def test_written_marker_reads_back_equal_and_as_its_file(tmp_path):
    run_dir = tmp_path / "r0042"
    run_dir.mkdir()
    (run_dir / chunk_name("r0042", 0)).write_bytes(b"frames")
    (run_dir / ".half-written.tmp").write_bytes(b"ignored")
    marker = write_marker(run_dir, 42)
    assert marker == read_marker(run_dir)
    assert marker.files == (MarkerFile("r0042-c00.h5", 6, adler32_file(run_dir / "r0042-c00.h5")),)
    assert json.loads((run_dir / MARKER).read_text()) == marker.to_dict()
    assert RunMarker.from_stream_fields(marker.to_stream_fields(), "msg") == marker
    with pytest.raises(FrozenInstanceError):
        marker.run = 43  # type: ignore[misc]


def test_missing_marker_means_not_concluded(tmp_path):
    with pytest.raises(MarkerError, match="run not concluded") as error:
        read_marker(tmp_path)
    assert error.value.origin == str(tmp_path / MARKER)


def test_validator_names_origin_and_field():
    good = {
        "run": 1,
        "run_name": "r0001",
        "files": [{"name": "a.h5", "bytes": 1, "adler32": "00020002"}],
        "concluded_at": "t",
    }
    assert RunMarker.from_dict(good, "x").to_dict() == good
    for change, field in (({"run": True}, "'run'"), ({"files": good["files"] * 2}, "twice")):
        with pytest.raises(MarkerError, match=f"^stream 7: .*{field}"):
            RunMarker.from_dict({**good, **change}, "stream 7")


def test_run_names_and_their_order():
    assert run_name(7) == "r0007" and run_name(10000) == "r10000"
    names = ["r10000", "r0002", "r9999", "notes"]
    assert sorted(names, key=run_order) == ["notes", "r0002", "r9999", "r10000"]
