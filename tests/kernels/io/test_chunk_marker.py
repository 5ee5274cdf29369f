"""Live-run markers: written atomically, read back validated, malformed ones named."""

import json

import pytest

from kernels.io.chunk_marker import (
    STARTED,
    chunk_marker_name,
    read_chunk_markers,
    read_started,
    write_chunk_marker,
    write_started,
)
from kernels.io.marker import MarkerError, adler32_file


def test_chunk_markers_round_trip_in_chunk_order(tmp_path):
    for chunk in (1, 0):
        data = tmp_path / f"r0007-c{chunk:02d}.h5"
        data.write_bytes(b"x" * (10 + chunk))
        write_chunk_marker(tmp_path, 7, chunk, events=5, files=[data.name])
    (tmp_path / "unrelated.json").write_text("{}")
    markers = read_chunk_markers(tmp_path)
    assert [m.chunk for m in markers] == [0, 1]
    assert markers[1].files[0].bytes == 11
    assert markers[1].files[0].adler32 == adler32_file(tmp_path / "r0007-c01.h5")
    assert markers[0].marker_name == chunk_marker_name("r0007", 0) == "r0007-c00.closed.json"
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        ('{"run": 7}', "lacks"),
        (
            json.dumps(
                {
                    "run": 7,
                    "run_name": "r0007",
                    "chunk": -1,
                    "events": 1,
                    "files": [],
                    "closed_at": "",
                }
            ),
            "'chunk' must be",
        ),
    ],
)
def test_malformed_chunk_marker_is_named(tmp_path, text, problem):
    (tmp_path / "r0007-c00.closed.json").write_text(text)
    with pytest.raises(MarkerError, match=problem) as error:
        read_chunk_markers(tmp_path)
    assert "r0007-c00.closed.json" in str(error.value)


def test_started_marker(tmp_path):
    assert read_started(tmp_path) is None
    write_started(tmp_path, 7, frame_rate_hz=120)
    assert read_started(tmp_path)["frame_rate_hz"] == 120.0
    (tmp_path / STARTED).write_text('{"run": 7, "run_name": "7"}')
    with pytest.raises(MarkerError, match="run_name"):
        read_started(tmp_path)
