"""transfer_run between plain folders (the embedded default): verified, atomic, resumable."""

from __future__ import annotations

import json

import pytest

from kernels.io.marker import adler32_file
from operators.transfer import (
    REPORT_NAME,
    ChecksumMismatch,
    LocalFolder,
    SourceFileMissing,
    TransferReport,
    transfer_run,
)
from tests.operators.fake_runs import make_run


def assert_complete(dest_run, marker):
    """Every marker file present with its checksum, the report, and nothing else (no temp files)."""
    names = sorted(p.name for p in dest_run.iterdir())
    assert names == sorted([f["name"] for f in marker["files"]] + [REPORT_NAME])
    for entry in marker["files"]:
        assert adler32_file(dest_run / entry["name"]) == entry["adler32"]


def test_copies_a_run_verified_and_writes_the_report(tmp_path):
    marker = make_run(tmp_path / "runs", 1, [300_000, 1000, 9_000_000, 10])
    report = transfer_run(
        tmp_path / "runs", tmp_path / "hpc", "r0001", marker["files"], parallel_files=3
    )
    assert isinstance(report, TransferReport)
    assert (report.files_copied, report.files_skipped) == (4, 0)
    assert report.bytes == report.total_bytes == 9_301_010
    assert report.rate == pytest.approx(report.bytes / report.seconds, rel=0.01)
    assert_complete(tmp_path / "hpc" / "r0001", marker)
    written = json.loads((tmp_path / "hpc" / "r0001" / REPORT_NAME).read_text())
    assert written == report.to_dict()
    assert set(written) >= {"bytes", "seconds", "rate", "files"}


def test_second_run_skips_verified_files_and_recopies_a_corrupted_one(tmp_path):
    marker = make_run(tmp_path / "runs", 1, [50_000, 60_000, 70_000])
    transfer_run(tmp_path / "runs", tmp_path / "hpc", "r0001", marker["files"])
    damaged = tmp_path / "hpc" / "r0001" / "r0001-c01.idx.h5"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    report = transfer_run(tmp_path / "runs", tmp_path / "hpc", "r0001", marker["files"])
    assert (report.files_copied, report.files_skipped, report.bytes) == (1, 2, 60_000)
    assert_complete(tmp_path / "hpc" / "r0001", marker)


def test_leftover_partial_file_from_a_crash_is_replaced(tmp_path):
    marker = make_run(tmp_path / "runs", 1, [80_000, 10])
    (tmp_path / "hpc" / "r0001").mkdir(parents=True)
    (tmp_path / "hpc" / "r0001" / ".r0001-c00.h5.part").write_bytes(b"half")
    transfer_run(tmp_path / "runs", tmp_path / "hpc", "r0001", marker["files"])
    assert_complete(tmp_path / "hpc" / "r0001", marker)


def test_missing_source_file_fails_naming_it(tmp_path):
    marker = make_run(tmp_path / "runs", 1, [100, 200])
    (tmp_path / "runs" / "r0001" / "r0001-c01.idx.h5").unlink()
    with pytest.raises(SourceFileMissing, match="r0001-c01.idx.h5"):
        transfer_run(
            tmp_path / "runs", tmp_path / "hpc", "r0001", marker["files"], backoff_seconds=0
        )
    assert not (tmp_path / "hpc" / "r0001" / "r0001-c01.idx.h5").exists()


def test_source_differing_from_marker_fails_and_leaves_no_file(tmp_path):
    marker = make_run(tmp_path / "runs", 1, [5000])
    source = tmp_path / "runs" / "r0001" / "r0001-c00.h5"
    data = bytearray(source.read_bytes())
    data[0] ^= 0x01
    source.write_bytes(bytes(data))  # same size, different bytes
    with pytest.raises(ChecksumMismatch, match="r0001-c00.h5.*source adler32"):
        transfer_run(
            tmp_path / "runs", tmp_path / "hpc", "r0001", marker["files"], backoff_seconds=0
        )
    assert list((tmp_path / "hpc" / "r0001").iterdir()) == []


def test_marker_names_cannot_leave_the_run_folder(tmp_path):
    files = [{"name": "../../escape", "bytes": 1, "adler32": "00020002"}]
    with pytest.raises(ValueError, match="bad file name"):
        transfer_run(tmp_path / "runs", tmp_path / "hpc", "r0001", files)
    with pytest.raises(ValueError, match="escapes"):
        LocalFolder(tmp_path).path("../elsewhere")


def test_mixed_locations_are_refused(tmp_path):
    marker = make_run(tmp_path / "runs", 1, [10])
    with pytest.raises(ValueError, match="both"):
        transfer_run(tmp_path / "runs", "root://127.0.0.1:1//x", "r0001", marker["files"])


def test_returns_the_report_it_writes_beside_the_run(tmp_path):
    """(formerly through TransferRunOperator, which only wrapped this function)"""
    marker = make_run(tmp_path / "exp" / "runs", 1, [200_000, 3000])
    report = transfer_run(tmp_path / "exp" / "runs", tmp_path / "hpc", "r0001", marker["files"])
    for entry in marker["files"]:
        assert adler32_file(tmp_path / "hpc" / "r0001" / entry["name"]) == entry["adler32"]
    written = json.loads((tmp_path / "hpc" / "r0001" / REPORT_NAME).read_text())
    assert written["files_copied"] == 2 and written["bytes"] == 203_000
    assert report.to_dict() == written


def test_a_source_file_missing_fails_before_anything_is_named_final(tmp_path):
    marker = make_run(tmp_path / "exp" / "runs", 1, [100, 100])
    (tmp_path / "exp" / "runs" / "r0001" / "r0001-c00.h5").unlink()
    with pytest.raises(SourceFileMissing, match="r0001-c00.h5"):
        transfer_run(tmp_path / "exp" / "runs", tmp_path / "hpc", "r0001", marker["files"])
    assert not (tmp_path / "hpc" / "r0001" / "r0001-c00.h5").exists()
