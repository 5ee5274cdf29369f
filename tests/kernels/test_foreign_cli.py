"""``python -m kernels process --run DIR --geometry FILE.geom``: a foreign run end to end, and
the clear errors of a broken geometry, a geometry that does not fit the frames, a missing file."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np

from kernels.__main__ import main
from kernels.io.readers.select import open_frames
from tests.kernels.io.test_geom import SIMPLE

GEOM = SIMPLE + "photon_energy = 9500\n"


def write_cxi(path, frames: int, shape=(100, 100)):
    data = np.random.default_rng(0).poisson(2.0, (frames, *shape)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["/data/data"] = data


def run_folder(tmp_path, geom_text=GEOM, shape=(100, 100)):
    (tmp_path / "run").mkdir()
    write_cxi(tmp_path / "run" / "r0001.cxi", 3, shape)
    (tmp_path / "det.geom").write_text(geom_text)
    return ["process", "--run", str(tmp_path / "run"), "--geometry", str(tmp_path / "det.geom")]


def test_cxi_run_with_a_geometry_is_processed(tmp_path, capsys):
    argv = run_folder(tmp_path) + ["--out", str(tmp_path / "out")]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 3 and summary["hits"] == 0  # Poisson noise only
    with open(tmp_path / "out" / "images.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(r["status"] == "miss" for r in rows)
    assert "3 images" in capsys.readouterr().out


def test_broken_geometry_names_file_and_line(tmp_path, capsys):
    argv = run_folder(tmp_path, GEOM.replace("a/fs = x", "a/fast = x")) + [
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'det.geom'}:" in err and "fast" in err and "Traceback" not in err


def test_geometry_outside_the_frames_is_refused(tmp_path, capsys):
    argv = run_folder(tmp_path, shape=(80, 100)) + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "outside the data" in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_missing_geometry_and_run_files_are_named(tmp_path, capsys):
    argv = run_folder(tmp_path) + ["--out", str(tmp_path / "out")]
    argv[argv.index("--geometry") + 1] = str(tmp_path / "nowhere.geom")
    assert main(argv) == 2
    assert f"{tmp_path / 'nowhere.geom'}: no such geometry file" in capsys.readouterr().err
    argv = ["process", "--run", str(tmp_path / "gone.cxi"), "--out", str(tmp_path / "out")]
    assert main([*argv, "--geometry", str(tmp_path / "det.geom")]) == 2
    assert "gone.cxi: no such file" in capsys.readouterr().err


def test_foreign_run_under_the_mpi_driver_is_processed(tmp_path):
    db = f"sqlite:///{tmp_path / 'results.db'}"
    argv = run_folder(tmp_path) + ["--out", str(tmp_path / "out"), "--db", db]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 3 and summary["ranks"] == 1


def test_broken_geometry_under_the_mpi_driver_names_file_and_line(tmp_path, capsys):
    argv = run_folder(tmp_path, GEOM.replace("a/fs = x", "a/fast = x"))
    assert (
        main([*argv, "--out", str(tmp_path / "out"), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    )
    err = capsys.readouterr().err
    assert f"{tmp_path / 'det.geom'}:" in err and "fast" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_live_on_facility_files_is_refused(tmp_path, capsys):
    assert main([*run_folder(tmp_path), "--out", str(tmp_path / "out"), "--live"]) == 2
    assert "--live follows the chunk format's chunk markers" in capsys.readouterr().err


def test_per_event_tags_are_read_from_the_fields_named(tmp_path, capsys):
    argv = run_folder(tmp_path) + ["--out", str(tmp_path / "out")]
    write_cxi(tmp_path / "run" / "r0002.cxi", 2)
    for name, laser in (("r0001.cxi", [1, 0, 1]), ("r0002.cxi", [0, 1])):
        with h5py.File(tmp_path / "run" / name, "a") as f:
            f["/LCLS/evr41"] = np.array(laser, dtype=np.int8)
    reader = open_frames(
        [tmp_path / "run"], str(tmp_path / "det.geom"), {"laser_on": "/LCLS/evr41"}
    )
    with reader:
        tags = reader.event_tags()
    assert [list(v) for v in tags["laser_on"]] == [[1.0, 0.0, 1.0], [0.0, 1.0]]
    assert main([*argv, "--event-tag", "laser_on=/LCLS/evr41"]) == 0
    assert main([*argv, "--event-tag", "laser_on=/LCLS/evr42"]) == 2  # no such field
    assert "the field /LCLS/evr42 named by tag laser_on is not in" in capsys.readouterr().err
    with h5py.File(tmp_path / "run" / "r0002.cxi", "a") as f:
        del f["/LCLS/evr41"]
        f["/LCLS/evr41"] = np.zeros(5)
    assert main([*argv, "--event-tag", "laser_on=/LCLS/evr41"]) == 2
    err = capsys.readouterr().err
    assert "r0002.cxi: tag laser_on from /LCLS/evr41 is not one number per event (2)" in err
    assert main([*argv, "--event-tag", "laser on"]) == 2
    assert "give NAME=/hdf5/field" in capsys.readouterr().err
