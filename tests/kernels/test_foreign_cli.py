"""``python -m kernels process --run DIR --geometry FILE.geom``: a foreign run end to end, and
the clear errors of a broken geometry, a geometry that does not fit the frames, a missing file."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np

from kernels.__main__ import main
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
    argv = run_folder(tmp_path, GEOM.replace("a/fs = x", "a/fast = x")) + ["--out", "o"]
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
