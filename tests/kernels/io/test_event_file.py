"""``python -m kernels extract-event``: one event of a run in a small compressed file that a
partial copy of the run (chunks absent) reads in place of its chunk, byte for byte the same."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys

import numpy as np
import pytest

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.io.event_file import check_event_file, extract_event
from kernels.io.runformat import RunFormatError, event_file_name, open_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A simulated run of 2 chunks of 2 events."""
    out = tmp_path_factory.mktemp("event-file")
    params = dataclasses.replace(SimulationParams(), chunk_size=2)
    simulate_experiment(out, runs=1, images=4, seed=7, params=params, log=lambda *_: None)
    return out / "runs" / "r0001"


def test_an_extracted_event_is_read_in_place_of_its_absent_chunk(run_dir, tmp_path):
    copy = tmp_path / "r0001"  # a partial copy: small files only, no chunk
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("r0001-c0?.h5"))
    said = extract_event(run_dir, 1, 1, copy / event_file_name("r0001-c01.h5", 1))
    written = copy / "r0001-c01.e1.h5"
    assert said["bytes"] == written.stat().st_size
    assert written.stat().st_size < (run_dir / "r0001-c01.h5").stat().st_size / 2  # compressed
    check_event_file(written, "r0001", 1, 1)
    with pytest.raises(RunFormatError, match="not event 0 of chunk 1 of r0001"):
        check_event_file(written, "r0001", 1, 0)
    with open_run(run_dir) as whole, open_run(copy, partial=True) as part:
        assert part.geometry == whole.geometry and part.events == whole.events
        np.testing.assert_array_equal(part.read_frame(1, 1), whole.read_frame(1, 1))
        assert part.read_frame(1, 1).dtype == whole.read_frame(1, 1).dtype
        assert part.wavelength(1, 1) == whole.wavelength(1, 1)
        assert part.timestamp(1, 1) == whole.timestamp(1, 1)
        with pytest.raises(RunFormatError, match="cannot read event 0"):
            part.read_frame(1, 0)  # not extracted, its chunk absent


def test_the_command_names_a_chunk_or_event_the_run_has_not(run_dir, tmp_path):
    with pytest.raises(RunFormatError, match="r0001-c01.h5: no event 2 \\(2 events\\)"):
        extract_event(run_dir, 1, 2, tmp_path / "e.h5")
    command = [sys.executable, "-m", "kernels", "extract-event", str(run_dir), str(tmp_path / "e.h5")]  # fmt: skip
    proc = subprocess.run([*command, "--chunk", "2", "--event", "0"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "r0001: run has no chunk 2 (2 chunks)" in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written
