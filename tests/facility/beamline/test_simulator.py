"""The beamline simulator writes complete, concluded runs with consistent ground truth."""

import json

import gemmi
import h5py
import numpy as np
import pytest

from facility.beamline.__main__ import main as beamline_main
from kernels.io.marker import MARKER, adler32_file, read_marker
from kernels.io.runformat import open_run


def test_run_is_concluded_with_checksums(sim_experiment):
    run_dir = sim_experiment / "runs" / "r0001"
    marker = read_marker(run_dir).to_dict()
    names = sorted(f["name"] for f in marker["files"])
    assert names == sorted(p.name for p in run_dir.glob("*.h5"))
    assert len([n for n in names if n.endswith(".idx.h5")]) == 3
    for f in marker["files"]:
        assert f["bytes"] == (run_dir / f["name"]).stat().st_size
        assert f["adler32"] == adler32_file(run_dir / f["name"])
    assert not list(run_dir.glob(".*tmp"))


def test_run_layout_and_truth_agree(sim_experiment):
    with open_run(sim_experiment / "runs" / "r0001") as run:
        assert run.n_events == 240
        assert run.dtype == np.uint16
        assert run.geometry.shape == (1024, 1024)
        frame = run.read_frame(2, 79)
        assert frame.shape == (1024, 1024)
        wavelengths = [run.wavelength(c, e) for c, e in run.events]
    with h5py.File(sim_experiment / "truth" / "r0001.h5") as t:
        assert np.allclose(wavelengths, t["wavelength"][()], rtol=1e-9)
        assert abs(np.mean(wavelengths) - 1.3) < 0.001
    with h5py.File(sim_experiment / "truth" / "r0001.h5") as t:
        hit = t["hit"][()]
        U = t["U"][()]
        assert hit.shape == (240,) and 0.2 < hit.mean() < 0.45
        assert np.allclose(U @ U.transpose(0, 2, 1), np.eye(3), atol=1e-9)
        events = np.unique(t["spots/event"][()])
        assert set(events) <= set(np.flatnonzero(hit)) | set(np.flatnonzero(~hit))
        per_hit = np.bincount(t["spots/event"][()].astype(int), minlength=240)[hit]
        assert np.median(per_hit) > 50  # a hit shows a lattice


def test_truth_mtz_is_the_lysozyme_like_crystal(sim_experiment):
    mtz = gemmi.read_mtz_file(str(sim_experiment / "truth" / "truth.mtz"))
    assert mtz.spacegroup.hm == "P 43 21 2"
    assert np.allclose(mtz.cell.parameters, (79.1, 79.1, 38.4, 90, 90, 90))
    assert mtz.nreflections > 5000
    data = np.array(mtz, copy=False)
    hkl = data[:, :3].astype(int)
    assert not any(
        mtz.spacegroup.operations().is_systematically_absent(list(h)) for h in hkl[:2000]
    )
    assert (data[:, 3] > 0).all()
    assert 1.85 < mtz.resolution_high() < 2.0


def test_same_seed_same_frames_and_cli(tmp_path, capsys):
    for name in ("a", "b"):
        assert (
            beamline_main(
                [
                    "simulate",
                    "--out",
                    str(tmp_path / name),
                    "--images",
                    "6",
                    "--chunk-size",
                    "3",
                    "--seed",
                    "5",
                    "--hit-rate",
                    "0.5",
                    "--workers",
                    "1",
                ]
            )
            == 0
        )
    assert "r0001: 6 images" in capsys.readouterr().out
    with open_run(tmp_path / "a/runs/r0001") as a, open_run(tmp_path / "b/runs/r0001") as b:
        for c, e in a.events:
            assert np.array_equal(a.read_frame(c, e), b.read_frame(c, e))
    assert json.loads((tmp_path / "a/runs/r0001" / MARKER).read_text())["run"] == 1


def test_variants_from_the_cli_with_their_truth(tmp_path):
    out = tmp_path / "variants"
    args = ["simulate", "--out", str(out), "--images", "16", "--chunk-size", "8", "--workers", "1"]
    args += ["--hit-rate", "0.5", "--seed", "4", "--spot-sigma-px", "0.7", "--spot-sigma-max-px"]
    args += ["2.0", "--spot-elongation", "1.5", "--domain-size-min-a", "500", "--mosaicity-max-deg"]
    args += ["0.2", "--ice-fraction", "0.5", "--miss-diffuse-photons", "0.5"]
    args += ["--photons-per-reflection", "30", "--space-group", "P 21 21 21", "--cell"]
    args += ["52", "67", "83", "90", "90", "90"]
    assert beamline_main(args) == 0
    settings = json.loads((out / "truth" / "simulation.json").read_text())
    assert settings["spot_sigma_max_px"] == 2.0 and settings["space_group"] == "P 21 21 21"
    with h5py.File(out / "truth" / "r0001.h5") as t:
        sigma, domain, mosaic = (
            t["spot_sigma_px"][()],
            t["domain_size_a"][()],
            t["mosaicity_deg"][()],
        )
        ice, hit, scale = t["ice"][()], t["hit"][()], t["scale"][()]
        excited = {k: t["excited"][k][()] for k in t["excited"]}
    assert sigma.shape == (16,) and np.all((0.7 <= sigma) & (sigma <= 2.0)) and np.ptp(sigma) > 0.3
    assert np.all((500 <= domain) & (domain <= 5000)) and np.all((0.05 <= mosaic) & (mosaic <= 0.2))
    assert 0 < ice.sum() < 16
    assert np.all(excited["partiality"] >= 0.1)
    assert set(excited["event"]) <= set(np.flatnonzero(scale > 0))  # hits and weak crystals
    with open_run(out / "runs" / "r0001") as run:  # a miss with ice or a halo is not blank
        frames = [run.read_frame(c, e).astype(float) for c, e in run.events]
    calm = [f.mean() for f, h, i in zip(frames, hit, ice) if not h and not i]
    assert calm and min(calm) > 0


def test_variant_options_are_checked(capsys):
    with pytest.raises(SystemExit):
        beamline_main(["simulate", "--out", "x", "--spot-elongation", "0.5"])
    assert "--spot-elongation" in capsys.readouterr().err
