"""Scaling with B, post-refinement and the fitted error model against the truth, on reflections
synthesised from a generated crystal (crystals varied 3x in size and mosaicity, B factors and
resolution limits per crystal, the trial's partiality settings 2x off)."""

from __future__ import annotations

import numpy as np
import pytest

from facility.beamline.crystal_model import make_crystal, write_truth_mtz
from facility.beamline.reflections_from_truth import SyntheticParams, synthesise, trial_settings
from kernels.crystal.symmetry import CrystalSymmetry, unpack
from kernels.io.mtz import read_intensities
from kernels.merging.algorithm import MergeError, MergeParams, merge
from kernels.merging.error_model import ErrorModel, normal_probability_slope
from kernels.merging.quality import cc_half_curve, cc_star, suggested_d_min, wilson_b
from kernels.merging.scaling import width_terms
from kernels.merging.statistics import merge_statistics

CELL, SPACE_GROUP, D_MIN = (79.1, 79.1, 38.4, 90.0, 90.0, 90.0), "P 43 21 2", 1.9
VARIED = SyntheticParams(images=2500, seed=4)


@pytest.fixture(scope="module")
def crystal(tmp_path_factory):
    """The generated crystal and its truth (hkl, IMEAN) read back from its MTZ."""
    crystal = make_crystal(CELL, SPACE_GROUP, D_MIN, seed=3)
    path = tmp_path_factory.mktemp("truth") / "truth.mtz"
    write_truth_mtz(path, crystal)
    hkl, intensity, _ = read_intensities(path)
    return crystal, (hkl, intensity), path


@pytest.fixture(scope="module")
def varied(crystal):
    return synthesise(crystal[0], VARIED)


@pytest.fixture(scope="module")
def ours_merged(varied):
    """The varied data merged with the default parameters (the trial's partiality settings)."""
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    return merge(varied, symmetry, MergeParams(**trial_settings(VARIED)))


def truth_stats(merged, truth):
    return merge_statistics(CrystalSymmetry.create(CELL, SPACE_GROUP), merged, 10, truth)


def test_scaling_and_postrefinement_beat_the_classic_merge(crystal, varied, ours_merged):
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    trial = trial_settings(VARIED)
    classic = truth_stats(merge(varied, symmetry, MergeParams.classic(**trial)), crystal[1])
    ours = truth_stats(ours_merged, crystal[1])
    assert ours["overall"]["cc_truth"] >= 0.98
    assert ours["overall"]["cc_truth"] >= classic["overall"]["cc_truth"] + 0.03
    # the last shell is beyond nearly every crystal's limit (CC1/2 ~ 0 for both): the gain
    # shows in the last shells that still hold signal
    for shell in (-3, -2):
        assert ours["shells"][shell]["cc_truth"] >= classic["shells"][shell]["cc_truth"] + 0.05
    images = ours_merged.images
    # the trial's domain size was 2x too small and its mosaicity 2x too large
    assert 1.5 < np.median(images.domain_size_factor()) < 2.5
    assert 0.4 < np.median(images.mosaicity_factor()) < 0.65
    # relative B factors follow the crystals' (b_range -5..25 A^2, so an sd of ~8.7)
    assert 4.0 < np.std(images.B) < 14.0
    assert 0 < ours["overall"]["cc_star"] <= 1


def test_error_model_is_fitted_to_the_data(crystal):
    """Uniform crystals, right partiality, 20 % model error: a ~ 1, b ~ 0.2, slope ~ 1."""
    clean = SyntheticParams(
        images=1500, spread=1.0, trial_width_factor=1.0, b_range=(0.0, 0.0),
        limit_range=(1.0, 1.0), bad_fraction=0.0, model_error=0.2, seed=5,
    )  # fmt: skip
    obs = synthesise(crystal[0], clean)
    merged = merge(
        obs, CrystalSymmetry.create(CELL, SPACE_GROUP), MergeParams(**trial_settings(clean))
    )
    assert merged.error_model.a == pytest.approx(1.0, abs=0.15)
    assert merged.error_model.b == pytest.approx(0.2, abs=0.03)
    assert merged.normal_probability_slope == pytest.approx(1.0, abs=0.1)
    fixed = merge(obs, CrystalSymmetry.create(CELL, SPACE_GROUP), MergeParams.classic())
    assert fixed.error_model == ErrorModel(1.0, 0.1)


def test_low_correlation_crystals_are_rejected(crystal, varied):
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    merged = merge(varied, symmetry, MergeParams(**trial_settings(VARIED), min_image_cc=0.3))
    # 3 % of the crystals are non-isomorphous (their intensities shuffled)
    assert 0.5 * 0.03 * VARIED.images < merged.rejected_images["low_cc_to_merge"]
    assert merged.rejected_images["low_cc_to_merge"] < 3 * 0.03 * VARIED.images
    on = merge(varied, symmetry, MergeParams(**trial_settings(VARIED), reject_delta_cc_sigma=3.0))
    assert on.rejected_images["delta_cc_half"] > 0
    cut = merge(varied, symmetry, MergeParams(**trial_settings(VARIED), crystal_resolution=True))
    assert cut.rejected_images["observations_beyond_crystal_limit"] > 0


def test_unity_partiality_and_bad_parameters(crystal, varied):
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    unity = merge(varied, symmetry, MergeParams(partiality_model="unity"))
    assert np.all(np.isfinite(unity.intensity))
    with pytest.raises(MergeError, match="partiality_model='sphere'"):
        MergeParams(partiality_model="sphere")
    with pytest.raises(MergeError, match="error_model='none'"):
        MergeParams(error_model="none")


def test_quality_numbers():
    assert cc_star(0.5) == pytest.approx(np.sqrt(2 / 3))
    assert np.isnan(cc_star(-0.1))
    # a CC1/2 curve that crosses 0.3 at d = 2.2 A, sampled in 10 shells to 1.8 A
    s0, r = 2.2**-2 - 0.05 * np.arctanh(1 - 0.6), 0.05
    edges = np.linspace(0, 1.8**-2, 11)
    d_max, d_min = np.r_[np.inf, edges[1:-1] ** -0.5], edges[1:] ** -0.5
    cc = cc_half_curve(0.5 * (edges[:-1] + edges[1:]), s0, r)
    assert suggested_d_min(d_max, d_min, cc, 1.8) == pytest.approx(2.2, abs=0.02)
    assert suggested_d_min(d_max, d_min, np.full(10, 0.99), 1.8) == 1.8
    z = np.random.default_rng(0).normal(0, 1.3, 20000)
    assert normal_probability_slope(z) == pytest.approx(1.3, abs=0.03)


def test_wilson_b_of_the_truth(crystal):
    """The generated model's atoms all have B = 20 A^2."""
    (hkl, intensity), symmetry = crystal[1], CrystalSymmetry.create(CELL, SPACE_GROUP)
    assert wilson_b(symmetry.resolution(hkl), intensity) == pytest.approx(20.0, abs=5.0)


def test_truth_cc_on_the_truths_wilson_b():
    """A merge that carries another overall B than the truth is compared on the truth's B."""
    from kernels.merging.statistics import pearson, truth_cc_after_wilson_b

    rng = np.random.default_rng(1)
    d = rng.uniform(1.9, 20.0, 5000)
    truth = rng.exponential(1.0, 5000) * np.exp(-20.0 * 0.5 / d**2)
    merged = truth * np.exp(-12.0 * 0.5 / d**2) * (1 + 0.02 * rng.standard_normal(5000))
    cc, b = truth_cc_after_wilson_b(merged, truth, d)
    assert abs(b - 12.0) <= 0.5
    assert cc > 0.999 > pearson(merged, truth) + 0.005


def test_the_merge_is_put_on_the_b_of_its_sharpest_crystals(crystal, varied, ours_merged):
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    trial = trial_settings(VARIED)
    median = merge(varied, symmetry, MergeParams(**trial, b_reference_percentile=50.0))
    sharp = ours_merged  # on the sharpest tenth's B (the default)
    shift = median.images.B - sharp.images.B  # one overall B moved, the same for every image
    assert np.ptp(shift) < 1e-9 and shift[0] < -3.0  # sharper than the median crystal
    q = 0.5 / symmetry.resolution(unpack(sharp.keys)) ** 2
    np.testing.assert_allclose(sharp.intensity, median.intensity * np.exp(-shift[0] * q))
    np.testing.assert_allclose(sharp.sigma, median.sigma * np.exp(-shift[0] * q))
    np.testing.assert_allclose(sharp.half2, median.half2 * np.exp(-shift[0] * q))
    assert np.array_equal(sharp.multiplicity, median.multiplicity)
    ours, before = truth_stats(sharp, crystal[1]), truth_stats(median, crystal[1])
    for a, b in zip(ours["shells"], before["shells"]):  # within a shell: little moves
        assert abs(a["cc_half"] - b["cc_half"]) < 0.03  # a shell spans a range of q
        assert a["mean_i_over_sigma"] == pytest.approx(b["mean_i_over_sigma"])
    # the truth has no B, as the sharpest crystals (B -5..25): pooled over shells, closer
    assert ours["overall"]["cc_truth"] > before["overall"]["cc_truth"] + 0.002
    assert abs(ours["overall"]["truth_relative_b"]) < abs(before["overall"]["truth_relative_b"])
    with pytest.raises(MergeError, match="b_reference_percentile=120"):
        MergeParams(b_reference_percentile=120.0)


def estimated_with(obs, image_widths, trial):
    """`obs` as an adaptive integration reports it: the partiality of the images in
    `image_widths` ({image: (domain size, mosaicity)}) estimated with that width, not the trial's
    (the same excitation error: log p scales as 1 / w^2), and each image's width recorded."""
    d = 1.0 / np.linalg.norm(obs.hkl @ CrystalSymmetry.create(CELL, SPACE_GROUP).B.T, axis=1)
    wavelength = obs.wavelength[obs.image]
    widths = np.tile(np.array(trial[:2], dtype=float), (obs.n_images, 1))
    for image, width in image_widths.items():
        widths[image] = width
    w_trial = sum(width_terms(d, wavelength, *trial))
    w_used = sum(width_terms(d, wavelength, *widths[obs.image].T, trial[2]))
    out = obs.select(np.ones(len(obs), dtype=bool))
    out.partiality = np.exp(np.log(obs.partiality) * w_trial / w_used)
    out.integration_widths = widths
    return out


def test_partialities_estimated_with_each_images_own_width(crystal, varied, ours_merged):
    """One crystal in ten integrated with a profile 5x too wide and no mosaicity (as adaptive
    integration once estimated on a Jungfrau 4M still): the merge must take each image's excitation
    errors from the width its partiality was estimated with, else those crystals' partiality
    error (largest at low resolution) is fitted as a B factor and costs the merge's CC."""
    symmetry = CrystalSymmetry.create(CELL, SPACE_GROUP)
    params = MergeParams(**trial_settings(VARIED))
    trial = params.trial_profile
    wide = {image: (trial[0] / 5.0, 0.0) for image in range(0, varied.n_images, 10)}
    adaptive = estimated_with(varied, wide, trial)
    told = merge(adaptive, symmetry, params)
    adaptive.integration_widths = None  # the merge assumes the trial's width for every image
    untold = merge(adaptive, symmetry, params)
    clean = truth_stats(ours_merged, crystal[1])["overall"]["cc_truth"]
    told_cc = truth_stats(told, crystal[1])["overall"]["cc_truth"]
    untold_cc = truth_stats(untold, crystal[1])["overall"]["cc_truth"]
    assert told_cc > clean - 0.003
    assert untold_cc < told_cc - 0.01
    wide_images = np.array(list(wide))
    # those crystals' B: as the others' (B -5..25 A^2), not shifted by the wrong width
    b_shift_told = np.median(told.images.B[wide_images]) - np.median(told.images.B)
    b_shift_untold = np.median(untold.images.B[wide_images]) - np.median(untold.images.B)
    assert abs(b_shift_told) < 3.0 < abs(b_shift_untold)
