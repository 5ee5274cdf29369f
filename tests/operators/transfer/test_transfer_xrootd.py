"""transfer_run over real XRootD servers (third-party copy, destination pulls), with real faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kernels.io.marker import adler32_file
from operators.hooks.xrootd import XRootDHook
from operators.transfer import REPORT_NAME, SourceFileMissing, load_marker, transfer_run
from tests.operators.fake_runs import make_run

REPO = Path(__file__).resolve().parents[3]


def assert_complete(dest_run: Path, marker: dict) -> None:
    """All marker files under their final names with the marker's checksum, the report, nothing else."""
    names = sorted(p.name for p in dest_run.iterdir())
    assert names == sorted([f["name"] for f in marker["files"]] + [REPORT_NAME])
    for entry in marker["files"]:
        assert adler32_file(dest_run / entry["name"]) == entry["adler32"], entry["name"]


def test_tpc_copies_a_run_and_resumes_by_skipping_verified_files(exp_runs, scratch, xrootd_pair):
    runs, runs_url = exp_runs
    scratch_dir, scratch_url = scratch
    marker = make_run(runs, 1, [3_000_000, 20_000, 1_000_000])
    assert load_marker(runs_url, "r0001") == marker  # the operator's way to get the file list
    report = transfer_run(runs_url, scratch_url, "r0001", marker["files"])
    assert (report.files_copied, report.files_skipped, report.bytes) == (3, 0, 4_020_000)
    assert_complete(scratch_dir / "r0001", marker)
    assert json.loads((scratch_dir / "r0001" / REPORT_NAME).read_text())["bytes"] == 4_020_000
    # the destination server computes the same checksum as the DAQ
    hook = XRootDHook(scratch_url)
    assert hook.adler32("r0001/r0001-c00.h5") == marker["files"][0]["adler32"]
    again = transfer_run(runs_url, scratch_url, "r0001", marker["files"])
    assert (again.files_copied, again.files_skipped, again.bytes) == (0, 3, 0)


def test_corrupted_destination_file_is_detected_and_copied_again(exp_runs, scratch):
    runs, runs_url = exp_runs
    scratch_dir, scratch_url = scratch
    marker = make_run(runs, 1, [500_000, 400_000])
    transfer_run(runs_url, scratch_url, "r0001", marker["files"])
    damaged = scratch_dir / "r0001" / "r0001-c00.h5"
    before = damaged.stat()
    with open(damaged, "r+b") as handle:  # flip bytes in place, as a faulty disk or user would
        handle.seek(1234)
        handle.write(b"\x00\x01\x02\x03")
    os.utime(damaged, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    assert adler32_file(damaged) != marker["files"][0]["adler32"]
    report = transfer_run(runs_url, scratch_url, "r0001", marker["files"])
    assert (report.files_copied, report.files_skipped) == (1, 1)
    assert_complete(scratch_dir / "r0001", marker)


def test_missing_source_file_fails_at_once_naming_it(exp_runs, scratch):
    runs, runs_url = exp_runs
    _, scratch_url = scratch
    marker = make_run(runs, 1, [1000, 2000])
    (runs / "r0001" / "r0001-c01.idx.h5").unlink()
    started = time.monotonic()
    with pytest.raises(SourceFileMissing, match="r0001-c01.idx.h5"):
        transfer_run(runs_url, scratch_url, "r0001", marker["files"], backoff_seconds=5)
    assert time.monotonic() - started < 5  # not retried


def test_killed_mid_file_then_rerun_completes_with_no_partial_file(exp_runs, throttled_dest):
    runs, runs_url = exp_runs
    marker = make_run(runs, 1, [40_000_000, 1000])  # 40 MB at 20 MB/s: about 2 s in flight
    dest_run = throttled_dest.data_dir / "kill" / "r0001"
    part = dest_run / ".r0001-c00.h5.part"
    code = (
        "import json, sys; from operators.transfer import transfer_run; "
        "transfer_run(sys.argv[1], sys.argv[2], 'r0001', json.loads(sys.argv[3]))"
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            runs_url,
            f"{throttled_dest.url}/kill",
            json.dumps(marker["files"]),
        ],
        cwd=REPO,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and 0 < part.stat().st_size < 40_000_000):
            assert time.monotonic() < deadline, "copy never started"
            assert child.poll() is None, "transfer ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the transfer and its xrdcp client
        child.wait()
    assert not (dest_run / "r0001-c00.h5").exists()  # no half file under the final name
    report = transfer_run(runs_url, f"{throttled_dest.url}/kill", "r0001", marker["files"])
    assert report.files_copied + report.files_skipped == 2
    assert_complete(dest_run, marker)


def test_destination_down_mid_run_is_retried_until_it_is_back(exp_runs, throttled_dest):
    runs, runs_url = exp_runs
    marker = make_run(runs, 1, [8_000_000, 8_000_000, 8_000_000])
    outcome: dict = {}

    def transfer():
        try:
            outcome["report"] = transfer_run(
                runs_url,
                f"{throttled_dest.url}/outage",
                "r0001",
                marker["files"],
                parallel_files=3,
                attempts=6,
                backoff_seconds=1,
            )
        except Exception as error:  # reported to the test thread below
            outcome["error"] = error

    worker = threading.Thread(target=transfer)
    worker.start()
    time.sleep(1.0)  # copies in flight
    throttled_dest.stop()
    time.sleep(2.0)  # outage: the transfer sees connection errors and backs off
    assert worker.is_alive()
    throttled_dest.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].files_copied == 3
    assert_complete(throttled_dest.data_dir / "outage" / "r0001", marker)


def test_xrootd_connections_give_the_transfer_its_ends(monkeypatch, exp_runs, scratch, xrootd_pair):
    """Connections of type xrootd (host, port, schema = folder) name both ends; the files come
    from the source's marker."""
    source, dest = xrootd_pair
    runs, _ = exp_runs
    scratch_dir, _ = scratch
    marker = make_run(runs, 1, [1_000_000, 500])
    for conn_id, server, folder in (
        ("XRD_BEAMLINE", source, runs),
        ("XRD_CENTER", dest, scratch_dir),
    ):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id}",
            json.dumps(
                {
                    "conn_type": "xrootd",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "schema": str(folder.relative_to(server.data_dir)),
                }
            ),
        )
    from_url = XRootDHook.from_connection("xrd_beamline").url
    to_url = XRootDHook.from_connection("xrd_center").url
    files = load_marker(from_url, "r0001")["files"]
    transfer_run(from_url, to_url, "r0001", files, backoff_seconds=0.1)
    for entry in marker["files"]:
        assert adler32_file(scratch_dir / "r0001" / entry["name"]) == entry["adler32"]
