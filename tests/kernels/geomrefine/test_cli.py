"""``python -m kernels refine-geometry`` from a .geom and a spots file, and its bad input."""

from __future__ import annotations

import json

import numpy as np

from kernels.__main__ import main
from kernels.geomrefine.spots import write_spots
from kernels.io.geom import read_geom, write_geom
from kernels.io.geom_detector import from_detector, to_detector

from .synthetic import PIXEL, indexed_stills, modular_detector, with_errors


def test_refined_geom_report_and_map_are_written(tmp_path, capsys):
    truth = modular_detector()
    write_geom(from_detector(with_errors(truth, seed=7, pixel_mm=PIXEL)), tmp_path / "start.geom")
    write_spots(tmp_path / "spots.h5", indexed_stills(truth, 20, seed=8))
    out = tmp_path / "out"
    argv = ["refine-geometry", "--geometry", str(tmp_path / "start.geom")]
    assert main([*argv, "--spots", str(tmp_path / "spots.h5"), "--out", str(out)]) == 0
    assert "8 groups refined, 0 held" in capsys.readouterr().out
    refined = to_detector(read_geom(out / "refined.geom"))
    assert np.abs(refined.corners - truth.corners).max() < 0.1 * PIXEL + 0.01
    report = json.loads((out / "geometry_refinement.json").read_text())
    assert report["rms_after_px"] < 0.3 < 1.0 < report["rms_before_px"]
    assert len(report["groups"]) == 8 and len(report["panels_after"]) == 16
    assert (out / "residual_map.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_inputs_are_named(tmp_path, capsys):
    truth = modular_detector()
    write_geom(from_detector(truth), tmp_path / "good.geom")
    (tmp_path / "broken.geom").write_text("clen = 0.1\np0/min_fs = zero\n")
    write_spots(tmp_path / "spots.h5", indexed_stills(truth, 2, seed=9))
    cases = [
        (["--geometry", str(tmp_path / "broken.geom")], "broken.geom:2"),
        (["--spots", str(tmp_path / "missing.h5")], "missing.h5: no such file"),
        (["--collection", "quadrants"], "no rigid_group_collection 'quadrants'"),
        (["--cell", str(tmp_path / "missing.json")], "missing.json: not a cell report"),
    ]
    for change, message in cases:
        args = {"--geometry": str(tmp_path / "good.geom"), "--spots": str(tmp_path / "spots.h5")}
        args |= dict(zip(change[::2], change[1::2]))
        argv = ["refine-geometry", *[x for kv in args.items() for x in kv], "--out", str(tmp_path)]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
