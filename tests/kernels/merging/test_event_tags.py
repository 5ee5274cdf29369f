"""Per-event tags carried from a pump-probe run's files into integrated.h5 (one process and the
MPI driver alike), and a split merged from them without an event table; malformed tags refused."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from kernels.__main__ import main as cli
from kernels.io.reflections import read_integrated
from kernels.io.runformat import TAGS, RunFormatError, open_run
from kernels.process import process_run


@pytest.fixture(scope="module")
def pump_probe(pump_probe_experiment, tmp_path_factory):
    """The pump-probe run processed in one process (``root/results``; ``root/exp``)."""
    root = tmp_path_factory.mktemp("pump_probe_results")
    (root / "exp").symlink_to(pump_probe_experiment)
    process_run(root / "exp" / "runs" / "r0001", root / "results", trial="t1")
    return root


def truth_laser(root) -> np.ndarray:
    with h5py.File(root / "exp" / "truth" / "r0001.h5") as f:
        return f["laser_on"][()].astype(float)


def test_tags_travel_from_the_run_files_to_integrated_h5(pump_probe, tmp_path, mpi_process):
    laser = truth_laser(pump_probe)
    assert 0 < laser.sum() < len(laser)
    simulated = json.loads((pump_probe / "exp" / "truth" / "simulation.json").read_text())
    _, images, _ = read_integrated(pump_probe / "results")
    event = images["chunk"] * simulated["chunk_size"] + images["event"]
    assert np.array_equal(images["tags"]["laser_on"], laser[event])
    delay = images["tags"]["delay_ns"]
    assert np.isnan(delay[laser[event] == 0]).all()
    assert set(delay[laser[event] == 1]) <= set(simulated["delays_ns"])
    assert (pump_probe / "exp" / "truth" / "truth_light.mtz").exists()
    # the MPI driver (rank 0 assembles) writes the same tags
    done = mpi_process(2, pump_probe / "exp" / "runs" / "r0001", tmp_path / "mpi")
    assert done.returncode == 0, done.stderr
    _, mpi_images, _ = read_integrated(tmp_path / "mpi")
    assert np.array_equal(mpi_images["event"], images["event"])
    assert np.array_equal(mpi_images["tags"]["laser_on"], images["tags"]["laser_on"])
    # each image names the chunk file it came from, in one process and under the driver alike
    expected = [f"r0001-c{chunk:02d}.h5" for chunk in images["chunk"]]
    assert list(images["file"]) == expected and list(mpi_images["file"]) == expected


def test_split_by_tags_from_the_run_files_needs_no_event_table(pump_probe, tmp_path, capsys):
    results = str(pump_probe / "results")
    args = ["merge", "--results", results, "--out", str(tmp_path / "m.mtz")]
    assert cli([*args, "--split", "laser_on"]) == 0
    assert "laser_on=1 - 0: Riso" in capsys.readouterr().out
    stats = json.loads((tmp_path / "split_stats.json").read_text())
    laser = truth_laser(pump_probe)
    assert {k: v["images"] for k, v in stats["sets"].items()} == {
        "0": int((laser == 0).sum()),
        "1": int((laser == 1).sum()),
    }
    assert stats["events"] is None
    # an event table wins over the files' tags where both name one: here every shot flipped
    _, images, _ = read_integrated(results)
    events = tmp_path / "events.csv"
    rows = [
        f"r0001,{c},{e},{1 - int(on)}"
        for c, e, on in zip(images["chunk"], images["event"], images["tags"]["laser_on"])
    ]
    events.write_text("run,chunk,event,laser_on\n" + "\n".join(rows) + "\n")
    assert cli([*args, "--split", "laser_on", "--events", str(events)]) == 0
    flipped = json.loads((tmp_path / "split_stats.json").read_text())
    assert flipped["sets"]["1"]["images"] == stats["sets"]["0"]["images"]
    assert cli([*args, "--split", "delay_ns=0,500,2000"]) == 0  # delay bins; dark in no set
    stats = json.loads((tmp_path / "split_stats.json").read_text())
    assert stats["images_in_no_set"] == int((laser == 0).sum())
    assert sorted(stats["sets"]) == ["0-500", "500-2000"]


def test_a_tag_that_is_not_one_number_per_event_is_refused(pump_probe, tmp_path):
    run = tmp_path / "r0001"
    shutil.copytree(pump_probe / "exp" / "runs" / "r0001", run)
    chunk = run / "r0001-c01.h5"
    with h5py.File(chunk, "a") as f:
        del f[f"{TAGS}/laser_on"]
        f[f"{TAGS}/laser_on"] = np.zeros(3)
    with pytest.raises(RunFormatError, match="tag .*laser_on is not one number per event") as exc:
        open_run(run)
    assert exc.value.path == chunk
