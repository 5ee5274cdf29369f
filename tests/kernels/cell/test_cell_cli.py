"""``python -m kernels cell-index`` on a simulated run (spots from our spot finder) and
``python -m kernels cell`` on its results: the monoclinic C cell, cell.json and the histograms;
two crystals mixed and missing inputs give clear messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from kernels.__main__ import main
from kernels.cell.run_index import write_cellfree
from tests.kernels.cell.lattices import LATTICES
from tests.kernels.cell.test_cell_determination import noisy_reduced_cells

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )


def test_run_indexed_cell_free_gives_its_cell(tmp_path):
    cell, space_group = LATTICES["mC"]
    sim = run(
        "-m", "facility.beamline", "simulate", "--out", str(tmp_path / "exp"), "--runs", "1",
        "--images", "40", "--hit-rate", "0.8", "--space-group", space_group,
        "--cell", *map(str, cell), "--workers", "1",
    )  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    results = tmp_path / "results" / "r0001"
    idx = run("-m", "kernels", "cell-index", "--run", str(tmp_path / "exp/runs/r0001"),
              "--out", str(results))  # fmt: skip
    assert idx.returncode == 0, idx.stderr
    hits, lattices = (int(w) for w in idx.stdout.split()[1:4:2])
    assert lattices >= 0.7 * hits > 15
    out = run("-m", "kernels", "cell", "--results", str(results), "--out", str(tmp_path / "cell"))
    assert out.returncode == 0, out.stderr
    assert "cell: mC" in out.stdout and "C 1 2 1" in out.stdout
    report = json.loads((tmp_path / "cell" / "cell.json").read_text())
    assert report["main"]["bravais"] == "mC" and report["main"]["space_groups"] == ["C 1 2 1"]
    assert np.allclose(report["main"]["cell"][:3], cell[:3], rtol=3e-3)
    assert abs(report["main"]["cell"][4] - cell[4]) < 0.3
    png = (tmp_path / "cell" / "cell_histograms.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def in_process(capsys, *argv: str) -> tuple[int, str, str]:
    """``python -m kernels ARGV`` in this process (the commands that need no MPI): exit code,
    stdout, stderr; no interpreter start-up per call."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_two_cells_mixed_report_both(tmp_path, capsys):
    tetragonal = noisy_reduced_cells(LATTICES["tP"][0], 40, seed=1)
    triclinic = noisy_reduced_cells(LATTICES["aP"][0], 15, seed=2)
    for name, cells in (("r1", tetragonal), ("r2", triclinic)):
        write_cellfree_dir(tmp_path / name, cells)
    code, out, err = in_process(
        capsys, "cell", "--results", str(tmp_path / "r1"), str(tmp_path / "r2"),
        "--out", str(tmp_path / "cell"),
    )  # fmt: skip
    assert code == 0, err
    assert re.search(r"cell: tP 79\.\d\d 79\.\d\d 38\.\d\d .*\(40 images\) of 55 indexed", out)
    assert re.search(r"also a second cell: aP 40\.\d\d .*\(15 images\)", out)


def write_cellfree_dir(directory: Path, cells: np.ndarray) -> None:
    directory.mkdir()
    write_cellfree(
        directory / "cellfree.csv", [(0, i, 0, 50, 45, 0.03, *c) for i, c in enumerate(cells)]
    )


def test_bad_inputs_are_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = in_process(
        capsys, "cell", "--results", str(tmp_path / "empty"), "--out", str(tmp_path)
    )
    assert code == 2 and "cellfree.csv not found" in err
    write_cellfree_dir(tmp_path / "few", noisy_reduced_cells(LATTICES["tP"][0], 3, seed=3))
    code, _, err = in_process(
        capsys, "cell", "--results", str(tmp_path / "few"), "--out", str(tmp_path)
    )
    assert code == 2 and "only 3 images indexed cell-free" in err
    code, _, err = in_process(
        capsys, "cell-index", "--run", str(tmp_path / "nowhere"), "--out", str(tmp_path)
    )
    assert code == 2 and "nowhere" in err
