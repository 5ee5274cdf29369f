"""Broken runs, calibration files and parameters give clear errors naming the culprit."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.io.runformat import DATA, RunFormatError, chunk_names, open_run, write_chunk
from kernels.stages.calibration import CalibrationError, load_calibration
from kernels.stages.pipeline import ParamsError, ProcessingParams


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    params = dataclasses.replace(SimulationParams(), chunk_size=3)
    simulate_experiment(
        out, runs=1, images=6, seed=3, params=params, workers=1, log=lambda *_: None
    )
    return out


@pytest.fixture
def run_dir(tiny_experiment, tmp_path):
    """A private copy of a good 2-chunk run, free to break."""
    shutil.copytree(tiny_experiment, tmp_path / "exp")
    return tmp_path / "exp" / "runs" / "r0001"


def expect_error(run_dir, culprit, words):
    with pytest.raises(RunFormatError) as info:
        open_run(run_dir)
    assert info.value.path.name == culprit
    assert culprit in str(info.value) and words in str(info.value)


def test_good_run_opens(run_dir):
    with open_run(run_dir) as run:
        assert run.n_events == 6 and len(run.chunks) == 2


def test_missing_chunk(run_dir):
    (run_dir / "r0001-c01.h5").unlink()
    expect_error(run_dir, "r0001-c01.h5", "missing")


def test_a_partial_copy_opens_with_the_chunks_it_has(run_dir):
    """A copy fetched chunk by chunk (the dashboard's center cache): every event known from
    the index files, frames of the chunks there, a clear error for the others until they come."""
    whole = open_run(run_dir)
    moved = run_dir.parent / "c00.away"
    (run_dir / "r0001-c00.h5").rename(moved)
    assert chunk_names(run_dir) == ["r0001-c00.h5", "r0001-c01.h5"]
    with open_run(run_dir, partial=True) as run:
        assert run.events == whole.events and run.geometry == whole.geometry
        assert (run.read_frame(1, 2) == whole.read_frame(1, 2)).all()
        with pytest.raises(RunFormatError, match="cannot read event 0"):
            run.read_frame(0, 0)
        moved.rename(run_dir / "r0001-c00.h5")  # it arrives
        assert (run.read_frame(0, 0) == whole.read_frame(0, 0)).all()
    whole.close()
    (run_dir / "r0001-c01.h5").unlink()
    (run_dir / "calibration.h5").unlink()  # not a chunk: still required
    expect_error(run_dir, "calibration.h5", "missing")
    with pytest.raises(RunFormatError, match="calibration.h5"):
        open_run(run_dir, partial=True)


def test_missing_chunk_without_marker(run_dir):
    (run_dir / "CONCLUDED.json").unlink()
    (run_dir / "r0001-c00.h5").unlink()
    expect_error(run_dir, "r0001-c00.h5", "chunk file missing")


def test_truncated_chunk(run_dir):
    path = run_dir / "r0001-c00.h5"
    os.truncate(path, path.stat().st_size // 2)
    expect_error(run_dir, "r0001-c00.h5", "truncated")


def test_index_does_not_match_chunk(run_dir):
    with open_run(run_dir) as run:
        frames = np.stack([run.read_frame(0, e) for e in range(2)])  # one event short
        geometry = run.geometry
    (run_dir / "CONCLUDED.json").unlink()
    tmp = run_dir.parent / "elsewhere"
    tmp.mkdir()
    idx = write_chunk(tmp / "r0001-c00.h5", frames, [0.0, 1.0], [9500.0, 9500.0], geometry)
    shutil.copy(idx, run_dir / "r0001-c00.idx.h5")
    expect_error(run_dir, "r0001-c00.h5", "does not match its index")


def test_wrong_dtype(run_dir):
    with open_run(run_dir) as run:
        frames = np.stack([run.read_frame(1, e) for e in range(3)]).astype(np.float32)
        geometry, ts = run.geometry, run.chunks[1].timestamps
    (run_dir / "CONCLUDED.json").unlink()
    write_chunk(run_dir / "r0001-c01.h5", frames, ts, [9500.0] * 3, geometry)
    expect_error(run_dir, "r0001-c01.h5", "uint16 or int16")


def test_garbage_index_file(run_dir):
    (run_dir / "r0001-c01.idx.h5").write_bytes(b"not hdf5 at all")
    expect_error(run_dir, "r0001-c01.idx.h5", "unreadable index file")


def test_corrupt_marker(run_dir):
    (run_dir / "CONCLUDED.json").write_text("{ half a json")
    expect_error(run_dir, "CONCLUDED.json", "unreadable marker")


def test_not_a_run(tmp_path):
    expect_error(tmp_path, tmp_path.name, "no index files")
    expect_error(tmp_path / "nope", "nope", "does not exist")


def test_frame_unreadable_after_open(run_dir):
    run = open_run(run_dir)
    with h5py.File(run_dir / "r0001-c00.h5", "r+") as f:
        del f[DATA]
    with pytest.raises(RunFormatError, match="r0001-c00.h5.*cannot read event 1"):
        run.read_frame(0, 1)
    run.close()


def test_calibration_errors(tiny_experiment, tmp_path):
    with pytest.raises(CalibrationError, match="do not fit detector"):
        load_calibration(tiny_experiment / "calib" / "calibration.h5", (512, 512))
    bad = tmp_path / "calibration.h5"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CalibrationError, match="calibration.h5: unreadable"):
        load_calibration(bad)


@pytest.mark.parametrize(
    "params, words",
    [
        ({"spotfinderx": {}}, "unknown parameter section"),
        ({"spotfinder": {"snr2": 3}}, "unknown spotfinder parameter"),
        ({"spotfinder": {"snr": "high"}}, "spotfinder.snr must be a float"),
        ({"hitfinder": {"min_spots": 2.5}}, "hitfinder.min_spots must be a int"),
        ({"hitfinder": {"min_spots": -1}}, "must not be negative"),
    ],
)
def test_invalid_parameters(params, words):
    with pytest.raises(ParamsError, match=words):
        ProcessingParams.from_dict(params)


def test_cli_reports_broken_run_without_traceback(run_dir, tmp_path):
    (run_dir / "r0001-c01.h5").unlink()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernels",
            "process",
            "--run",
            str(run_dir),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "r0001-c01.h5" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_processes_a_run(run_dir, tmp_path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"hitfinder": {"min_spots": 20}}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernels",
            "process",
            "--run",
            str(run_dir),
            "--out",
            str(tmp_path / "out"),
            "--params",
            str(params),
            "--trial",
            "t1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 6 and summary["trial"] == "t1"
    assert summary["params"]["hitfinder"]["min_spots"] == 20
    with h5py.File(run_dir.parent.parent / "truth" / "r0001.h5") as t:
        assert summary["hits"] == int(t["hit"][()].sum())
    assert len((tmp_path / "out" / "images.csv").read_text().splitlines()) == 7
