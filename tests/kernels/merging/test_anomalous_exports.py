"""Anomalous merging against the truth ΔF, the files for downstream tools, a reference MTZ and
the merge's parameters, through ``merge_results`` and the command line on a real run file."""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from facility.beamline.crystal_model import AnomalousSites, make_crystal, write_truth_mtz
from facility.beamline.reflections_from_truth import SyntheticParams, synthesise, trial_settings
from kernels.__main__ import main as cli
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.mtz import read_intensities, write_merged_mtz
from kernels.merging.algorithm import MergeError, MergeParams, merge
from kernels.merging.cli import merge_results, read_truth
from kernels.merging.exports import free_flags
from kernels.merging.settings import merge_params
from kernels.merging.statistics import merge_statistics, pearson

CELL, SPACE_GROUP = (79.1, 79.1, 38.4, 90.0, 90.0, 90.0), "P 43 21 2"


@pytest.fixture(scope="module")
def selenium(tmp_path_factory):
    """A crystal with 4 heavy atoms (f'' = 4 e) per asymmetric unit, its truth MTZ and data."""
    crystal = make_crystal(CELL, SPACE_GROUP, 1.9, 3, anomalous=AnomalousSites("Se", 4, 4.0))
    path = tmp_path_factory.mktemp("se") / "truth.mtz"
    write_truth_mtz(path, crystal)
    params = SyntheticParams(images=3000, seed=2)
    return path, synthesise(crystal, params), params


def test_friedel_mates_merged_separately_match_the_truth(selenium):
    truth_mtz, obs, params = selenium
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    truth, truth_anomalous = read_truth(truth_mtz, symmetry)
    assert truth_anomalous is not None
    merged = merge(obs, symmetry, MergeParams(**trial_settings(params)))
    stats = merge_statistics(symmetry, merged, 10, truth, truth_anomalous)
    low = stats["overall"]["low_resolution_half"]
    assert low["cc_ano_truth"] >= 0.4  # 0.58 here; >= 0.5 with 10^4 images (bench)
    assert low["cc_ano"] > 0.02
    assert stats["shells"][0]["cc_ano_truth"] > stats["shells"][-1]["cc_ano_truth"]
    friedel = merged.anomalous
    assert np.array_equal(friedel.i_plus[friedel.centric], friedel.i_minus[friedel.centric])
    # without anomalous scatterers the differences are noise
    plain = make_crystal(CELL, SPACE_GROUP, 1.9, 3)
    flat = merge(synthesise(plain, params), symmetry, MergeParams(**trial_settings(params)))
    flat_stats = merge_statistics(symmetry, flat, 10, truth, truth_anomalous)
    assert abs(flat_stats["overall"]["low_resolution_half"]["cc_ano"]) < 0.05


def test_outputs_for_downstream_tools(lysozyme, tmp_path):
    exp, out, _ = lysozyme
    cif = tmp_path / "unmerged.cif"
    stats = merge_results(
        [out], tmp_path / "merged.mtz", exp / "truth" / "truth.mtz", unmerged_cif=cif
    )
    mtz = gemmi.read_mtz_file(str(tmp_path / "merged.mtz"))
    labels = [c.label for c in mtz.columns]
    for label in ("IMEAN", "SIGIMEAN", "I(+)", "SIGI(+)", "I(-)", "SIGI(-)", "NOBS", "FreeR_flag"):
        assert label in labels
    data = np.array(mtz, copy=False)
    flags = data[:, labels.index("FreeR_flag")]
    assert 0.03 < np.mean(flags == 0) < 0.07 and flags.max() == 19
    # I(+), I(-) average to about IMEAN (simulated data without anomalous scatterers)
    both = np.isfinite(data[:, labels.index("I(+)")]) & np.isfinite(data[:, labels.index("I(-)")])
    mean_pm = 0.5 * (data[both, labels.index("I(+)")] + data[both, labels.index("I(-)")])
    assert pearson(mean_pm, data[both, labels.index("IMEAN")]) > 0.95
    # CrystFEL half sets: parseable, and they correlate as CC1/2 says
    halves = []
    for path in stats["half_sets"]:
        lines = open(path).read().splitlines()
        assert lines[0] == "CrystFEL reflection list version 2.0"
        assert lines[1] == "Symmetry: 4/mmm" and lines[-1] == "End of reflections"
        rows = [line.split() for line in lines[3:-1]]
        halves.append({tuple(map(int, r[:3])): float(r[3]) for r in rows})
    common = sorted(set(halves[0]) & set(halves[1]))
    cc = pearson(np.array([halves[0][h] for h in common]), np.array([halves[1][h] for h in common]))
    assert cc == pytest.approx(stats["overall"]["cc_half"], abs=0.02)
    # the unmerged mmCIF is read by gemmi, one row per observation merged
    block = gemmi.as_refln_blocks(gemmi.cif.read(str(cif)))[0]
    assert block.spacegroup.hm == SPACE_GROUP
    assert len(block.make_miller_array()) == stats["merged_observations"]
    assert stats["merged_observations"] <= stats["observations"] - stats["rejected_observations"]
    on_disk = json.loads((tmp_path / "merge_stats.json").read_text())
    assert 0.5 < on_disk["error_model"]["a"] < 5 and on_disk["error_model"]["b"] >= 0
    assert on_disk["overall"]["suggested_d_min"] >= on_disk["overall"]["d_min"] - 1e-6
    assert np.isfinite(on_disk["overall"]["wilson_b"])


def test_free_flags_are_stable():
    keys = np.arange(1, 200001) * 7919
    flags = free_flags(keys, 0.05)
    assert np.array_equal(flags, free_flags(keys[::-1], 0.05)[::-1])
    assert np.mean(flags == 0) == pytest.approx(0.05, abs=0.005)


def test_reference_mtz(lysozyme, tmp_path):
    exp, out, _ = lysozyme
    truth = exp / "truth" / "truth.mtz"
    stats = merge_results([out], tmp_path / "m.mtz", truth, reference_mtz=truth)
    assert stats["overall"]["cc_truth"] >= 0.95 and stats["reference"] == str(truth)
    hkl, intensity, symmetry = read_intensities(truth)
    other_cell = CrystalSymmetry.create((81.0, 81.0, 38.4, 90, 90, 90), SPACE_GROUP)
    write_merged_mtz(
        tmp_path / "cell.mtz", other_cell, hkl, intensity, intensity, np.ones(len(hkl))
    )
    with pytest.raises(MergeError, match=r"reference .*cell.mtz has cell \(81.0"):
        merge_results([out], tmp_path / "m2.mtz", reference_mtz=tmp_path / "cell.mtz")
    other_group = CrystalSymmetry.create(CELL, "P 41 21 2")
    write_merged_mtz(tmp_path / "sg.mtz", other_group, hkl, intensity, intensity, np.ones(len(hkl)))
    args = ["merge", "--results", str(out), "--out", str(tmp_path / "m3.mtz")]
    assert cli([*args, "--reference", str(tmp_path / "sg.mtz")]) == 2
    assert not (tmp_path / "m3.mtz").exists()


def test_merge_parameters(tmp_path, capsys, lysozyme):
    trial = tmp_path / "trial.json"
    trial.write_text(json.dumps({"integration": {"mosaicity_deg": 0.2}, "merge": {"cycles": 3}}))
    params = merge_params(trial, ["scale_b=false", "min_image_cc=0.4", "error_model=fixed"])
    assert params.trial_mosaicity_deg == 0.2 and params.cycles == 3
    assert not params.scale_b and params.min_image_cc == 0.4 and params.error_model == "fixed"
    with pytest.raises(MergeError, match="unknown merge parameter 'nope'"):
        merge_params(None, ["nope=1"])
    with pytest.raises(MergeError, match="scale_b='maybe': not true or false"):
        merge_params(None, ["scale_b=maybe"])
    with pytest.raises(MergeError, match="cycles='x': not a int"):
        merge_params(None, ["cycles=x"])
    trial.write_text(json.dumps({"merge": {"bogus": 1}}))
    with pytest.raises(MergeError, match=r"unknown merge parameter\(s\) \['bogus'\]"):
        merge_params(trial)
    _, out, _ = lysozyme
    args = ["merge", "--results", str(out), "--out", str(tmp_path / "m.mtz")]
    assert cli([*args, "--set", "partiality_model=sphere"]) == 2
    assert "partiality_model='sphere'" in capsys.readouterr().err
    assert (
        cli([*args, "--set", "postrefine=false", "--params", str(tmp_path / "missing.json")]) == 2
    )
    assert "missing.json: invalid parameters" in capsys.readouterr().err
