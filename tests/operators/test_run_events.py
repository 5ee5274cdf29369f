"""The run-concluded marker contract: checksums, validation, atomic writing, stream encoding."""

from __future__ import annotations

import json
import subprocess

import pytest

from kernels.io.marker import adler32_file
from operators.run_events import (
    MARKER_NAME,
    MarkerError,
    marker_from_stream_fields,
    marker_to_stream_fields,
    read_marker,
    validate_marker,
)
from tests.operators.fake_runs import make_run


def test_adler32_matches_xrdadler32(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 40_000 + b"tail")
    tool = subprocess.run(["xrdadler32", str(path)], capture_output=True, text=True, check=True)
    assert adler32_file(path) == tool.stdout.split()[0]


def test_marker_lists_every_file_with_size_and_checksum(tmp_path):
    marker = make_run(tmp_path / "runs", 7, [1000, 2000, 3000])
    assert marker["run"] == 7 and marker["run_name"] == "r0007"
    assert [f["name"] for f in marker["files"]] == [
        "r0007-c00.h5",
        "r0007-c01.idx.h5",
        "r0007-c02.h5",
    ]
    run_dir = tmp_path / "runs" / "r0007"
    for entry in marker["files"]:
        assert entry["bytes"] == (run_dir / entry["name"]).stat().st_size
        assert entry["adler32"] == adler32_file(run_dir / entry["name"])
    assert read_marker(run_dir) == marker
    assert (
        sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []
    )  # temp file renamed away


@pytest.mark.parametrize(
    "change, message",
    [
        ({"run_name": "run1"}, "run_name"),
        ({"run": -1}, "'run'"),
        ({"files": []}, "non-empty"),
        (
            {"files": [{"name": "../../etc/passwd", "bytes": 1, "adler32": "00000001"}]},
            "bad file name",
        ),
        ({"files": [{"name": "a.h5", "bytes": 1, "adler32": "XYZ"}]}, "adler32"),
        ({"files": [{"name": "a.h5", "bytes": 1}]}, "name, bytes, adler32"),
    ],
)
def test_bad_markers_are_refused_naming_the_field(change, message):
    good = {
        "run": 1,
        "run_name": "r0001",
        "concluded_at": "now",
        "files": [{"name": "r0001-c00.h5", "bytes": 1, "adler32": "00020002"}],
    }
    validate_marker(good, "m")
    with pytest.raises(MarkerError, match=message):
        validate_marker({**good, **change}, "origin.json")


def test_unparsable_marker_names_its_path(tmp_path):
    (tmp_path / MARKER_NAME).write_text("{not json")
    with pytest.raises(MarkerError, match=str(tmp_path / MARKER_NAME)):
        read_marker(tmp_path)


def test_stream_fields_round_trip(tmp_path):
    marker = make_run(tmp_path / "runs", 3, [10, 20])
    fields = marker_to_stream_fields(marker)
    assert all(isinstance(v, str) for v in fields.values())
    encoded = {k.encode(): v.encode() for k, v in fields.items()}  # as redis returns them
    assert marker_from_stream_fields(encoded, "msg") == marker
    with pytest.raises(MarkerError, match="msg"):
        marker_from_stream_fields({**fields, "files": json.dumps([{"name": "x"}])}, "msg")
