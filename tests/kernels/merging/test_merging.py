"""Merging: accuracy against the true intensities, indexing ambiguity, and refused inputs."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from kernels.__main__ import main as cli
from kernels.io.mtz import read_intensities
from kernels.io.reflections import read_integrated
from kernels.merging.algorithm import MergeError, MergeParams, merge
from kernels.merging.cli import load_observations, merge_results
from tests.kernels.ground_truth import read_truth


def test_merged_intensities_correlate_with_truth(lysozyme, tmp_path):
    exp, out, _ = lysozyme
    stats = merge_results([out], tmp_path / "merged.mtz", exp / "truth" / "truth.mtz")
    overall = stats["overall"]
    assert overall["cc_truth"] >= 0.95
    assert overall["cc_half"] >= 0.9
    assert 0 < overall["rsplit"] < 0.2
    assert 0.5 < overall["completeness"] <= 1.0 and overall["multiplicity"] > 2
    assert len(stats["shells"]) == 10
    assert sum(s["n_unique"] for s in stats["shells"]) == overall["n_unique"]
    assert stats["shells"][0]["cc_truth"] > 0.95  # low resolution is best measured
    on_disk = json.loads((tmp_path / "merge_stats.json").read_text())
    assert on_disk["overall"]["n_unique"] == overall["n_unique"]
    hkl, imean, symmetry = read_intensities(tmp_path / "merged.mtz")
    assert symmetry.space_group == "P 43 21 2" and len(hkl) == overall["n_unique"]
    assert np.all(symmetry.to_asu(hkl) == hkl)


def test_indexing_ambiguity_is_resolved(p43, tmp_path):
    exp, out, summary = p43
    stats = merge_results([out], tmp_path / "merged.mtz", exp / "truth" / "truth.mtz")
    assert stats["overall"]["cc_truth"] >= 0.9
    assert 0 < stats["reindexed_images"] < summary["integrated"]
    # each image's chosen setting, relative to the truth, must be the same for (nearly) all
    # images, also when most images are assigned against a small bootstrap subset's consensus
    obs, symmetry, _ = load_observations([out])
    merged = merge(obs, symmetry, MergeParams(ambiguity_subset=50))
    _, images, _ = read_integrated(out)
    truth = read_truth(exp)
    B, Binv = symmetry.B, np.linalg.inv(symmetry.B)
    twin = symmetry.ambiguity_rotations[1]
    setting = []
    for c, e, U, op in zip(images["chunk"], images["event"], images["U"], merged.reindex):
        U_true = truth["U"][c * 100 + e]
        # indexed h relates to true h by a lattice rotation R: A = A_true R^T  ->  R^T = B^-1 U_true^T U B
        R = np.rint((Binv @ U_true.T @ U @ B).T).astype(int)
        in_laue = any(
            np.array_equal(R @ (twin if op else np.eye(3, dtype=int)), g)
            for g in symmetry.laue_rotations
        )
        setting.append(in_laue)
    setting = np.array(setting)
    agreement = max(setting.mean(), 1 - setting.mean())
    assert agreement > 0.97


def test_empty_results_are_refused(lysozyme, tmp_path):
    _, out, _ = lysozyme
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MergeError, match="no integrated.h5"):
        load_observations([empty])
    with pytest.raises(MergeError, match="no result directories"):
        load_observations([])
    shutil.copy(out / "integrated.h5", empty / "integrated.h5")
    with h5py.File(empty / "integrated.h5", "a") as f:
        for key in list(f["reflections"]):
            data = f["reflections"][key][()]
            del f["reflections"][key]
            f["reflections"][key] = data[:0]
    with pytest.raises(MergeError, match="no integrated reflections"):
        load_observations([empty])
    assert cli(["merge", "--results", str(empty), "--out", str(tmp_path / "m.mtz")]) == 2
    assert not (tmp_path / "m.mtz").exists()


def test_mixed_trials_are_refused(lysozyme, p43, tmp_path):
    _, out, _ = lysozyme
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(out / "integrated.h5", other / "integrated.h5")
    with h5py.File(other / "integrated.h5", "a") as f:
        f.attrs["trial"] = "t2"
    with pytest.raises(MergeError, match=r"different trials.*\['t1', 't2'\]"):
        load_observations([out, other])
    with pytest.raises(MergeError, match="different crystals"):
        load_observations([out, p43[1]])
    with h5py.File(other / "integrated.h5", "a") as f:
        f.attrs["trial"], f.attrs["space_group"] = "t1", "P 99"
    with pytest.raises(MergeError, match="unknown space group 'P 99'"):
        load_observations([other])


def test_merge_command_line(lysozyme, tmp_path, capsys):
    exp, out, _ = lysozyme
    assert (
        cli(
            [
                "merge",
                "--results",
                str(out),
                "--out",
                str(tmp_path / "m.mtz"),
                "--truth",
                str(exp / "truth" / "truth.mtz"),
            ]
        )
        == 0
    )
    assert "CC to truth" in capsys.readouterr().out
    assert (tmp_path / "merge_stats.json").exists()
    assert (
        cli(
            [
                "merge",
                "--results",
                str(out),
                "--out",
                str(tmp_path / "m2.mtz"),
                "--truth",
                str(tmp_path / "nope.mtz"),
            ]
        )
        == 2
    )
    assert "cannot read MTZ" in capsys.readouterr().err
