"""A live run's transfer, chunk by chunk: marker last at the center, verified chunks never
re-copied, CONCLUDED.json last; and a chunk killed mid-file over real XRootD, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kernels.io.chunk_marker import chunk_marker_name, read_chunk_markers
from kernels.io.marker import MARKER, adler32_file, write_marker
from operators.chunk_transfer import finish_run, transfer_chunk, transfer_started
from operators.transfer import REPORT_NAME
from tests.operators.fake_runs import make_live_chunk, start_live_run

REPO = Path(__file__).resolve().parents[3]


def assert_verified(dest_run: Path, source_run: Path, names) -> None:
    for name in names:
        assert adler32_file(dest_run / name) == adler32_file(source_run / name), name


def test_live_run_moves_chunk_by_chunk_and_concludes_last(tmp_path):
    source, dest = tmp_path / "beamline", tmp_path / "center"
    started = start_live_run(source, 1)
    assert transfer_started(source, dest, "r0001", started) == 256
    chunks = [make_live_chunk(source, 1, c, 5000) for c in range(3)]
    reports = [transfer_chunk(source, dest, "r0001", m) for m in chunks[:2]]
    assert [r["files_copied"] for r in reports] == [2, 2] and not reports[0]["skipped"]
    dest_run, source_run = dest / "r0001", source / "r0001"
    for marker in read_chunk_markers(dest_run):  # each marker after the files it vouches for
        newest_file = max((dest_run / f.name).stat().st_mtime_ns for f in marker.files)
        assert (dest_run / marker.marker_name).stat().st_mtime_ns >= newest_file
    assert not (dest_run / MARKER).exists()
    # a replayed chunk is not looked at again: not even its source is read
    moved_file = source_run / "r0001-c00.h5"
    content = moved_file.read_bytes()
    moved_file.unlink()
    assert transfer_chunk(source, dest, "r0001", chunks[0])["skipped"]
    moved_file.write_bytes(content)
    # chunk 2's event never came: the run marker's transfer brings it, then CONCLUDED.json
    marker = write_marker(source_run, 1).to_dict()
    before = (dest_run / "r0001-c01.h5").stat().st_mtime_ns
    report = finish_run(source, dest, "r0001", marker, seconds=1.0, moved_bytes=10128)
    assert report.files_copied == 4  # chunk 2 (files, then marker) and STARTED.json only
    assert (dest_run / "r0001-c01.h5").stat().st_mtime_ns == before
    assert (dest_run / MARKER).stat().st_mtime_ns >= max(
        (dest_run / f["name"]).stat().st_mtime_ns for f in marker["files"]
    )
    assert_verified(dest_run, source_run, [f["name"] for f in marker["files"]] + [MARKER])
    assert json.loads((dest_run / REPORT_NAME).read_text())["total_bytes"] == report.total_bytes
    assert not [p for p in dest_run.iterdir() if p.name.startswith(".")]


def test_the_runs_end_does_not_look_again_at_chunks_the_task_brought(tmp_path):
    source, dest = tmp_path / "beamline", tmp_path / "center"
    transfer_started(source, dest, "r0001", start_live_run(source, 1))
    chunks = [make_live_chunk(source, 1, c, 5000) for c in range(3)]
    for chunk in chunks[:2]:
        transfer_chunk(source, dest, "r0001", chunk)
    known = [n for m in chunks[:2] for n in [chunk_marker_name("r0001", m["chunk"])]
             + [f["name"] for f in m["files"]]]  # fmt: skip
    # were they looked at, these unreadable markers at the center would fail the run's end
    for chunk in chunks[:2]:
        (dest / "r0001" / chunk_marker_name("r0001", chunk["chunk"])).write_text("{")
    marker = write_marker(source / "r0001", 1).to_dict()
    report = finish_run(source, dest, "r0001", marker, 1.0, 10128, known=known)
    assert report.files_copied == 4 and report.late_chunk_events == chunks[2]["events"]
    corrupted = {chunk_marker_name("r0001", m["chunk"]) for m in chunks[:2]}
    names = [f["name"] for f in marker["files"] if f["name"] not in corrupted]
    assert_verified(dest / "r0001", source / "r0001", names + [MARKER])


def test_chunk_killed_mid_file_over_xrootd_then_resumed(exp_runs, throttled_dest):
    runs, runs_url = exp_runs
    start_live_run(runs, 1)
    marker = make_live_chunk(runs, 1, 0, 16_000_000)  # 16 MB at 20 MB/s: 0.8 s in flight
    for path in (runs / "r0001").iterdir():
        path.chmod(0o644)
    dest_url = f"{throttled_dest.url}/live-kill"
    dest_run = throttled_dest.data_dir / "live-kill" / "r0001"
    part = dest_run / ".r0001-c00.h5.part"
    code = (
        "import json, sys; from operators.chunk_transfer import transfer_chunk; "
        "transfer_chunk(sys.argv[1], sys.argv[2], 'r0001', json.loads(sys.argv[3]))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, runs_url, dest_url, json.dumps(marker)],
        cwd=REPO,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and 0 < part.stat().st_size < 16_000_000):
            assert time.monotonic() < deadline, "copy never started"
            assert child.poll() is None, "transfer ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the transfer and its client
        child.wait()
    assert not (dest_run / "r0001-c00.h5").exists()
    assert not (dest_run / "r0001-c00.closed.json").exists()  # no marker for a partial chunk
    report = transfer_chunk(runs_url, dest_url, "r0001", marker)
    assert not report["skipped"] and report["files_copied"] >= 1
    assert [m.chunk for m in read_chunk_markers(dest_run)] == [0]
    assert_verified(dest_run, runs / "r0001", ["r0001-c00.h5", "r0001-c00.idx.h5"])
    assert transfer_chunk(runs_url, dest_url, "r0001", marker)["skipped"]
