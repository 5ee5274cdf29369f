"""Merging integrated stills into one set of unique intensities, with its statistics.

Model: an observation of reflection h on image i is ``I = G_i * p * I_h`` (G_i the image scale,
p the estimated partiality). Scales and merged intensities are found by alternating weighted
least squares, each a handful of ``np.bincount`` passes over all observations, so 10^7
observations merge in seconds. Observations further than ``outlier_sigma`` from the model are
rejected. Where the space group is less symmetric than its lattice (e.g. P 43) every image may
be indexed in any of the equivalent settings; each image is reindexed to the setting that agrees
best with the merged data of all other images (iterated to convergence), before scaling.

Everything is vectorised over observations; equivalent reflections are grouped by the integer
keys of :mod:`kernels.crystal.symmetry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, KeyIndex, pack, unpack
from kernels.merging.anomalous import FriedelMerge, merge_friedel_mates
from kernels.merging.error_model import ErrorModel, normal_probability_slope, normalised_deviations
from kernels.merging.overall_b import on_overall_b, sharpest_b_shift
from kernels.merging.rejection import per_image_cc, reject_images
from kernels.merging.scaling import (
    ImageModel,
    ProfileTerms,
    ScaleFit,
    merged_intensities,
    scale_and_merge,
)


class MergeError(Exception):
    """Result sets that cannot be merged (empty, mixed trials or crystals, bad truth file)."""


@dataclass(frozen=True)
class MergeParams:
    """Tunable merging parameters (the trial's ``merge`` section; ``--set NAME=VALUE``)."""

    min_partiality: float = 0.2
    d_min: float = 0.0  # 0: keep every resolution
    cycles: int = 8
    outlier_sigma: float = 6.0
    error_model: str = (
        "fit"  # "fit": var = a (sigma^2 + (b I)^2) fitted; "fixed": a=1, b=error_fraction
    )
    error_fraction: float = 0.1  # b of the fixed model, and the fit's start
    scale_b: bool = True  # a relative B factor per image beside its scale
    b_reference_percentile: float = 10.0  # the crystals' B the merge is put on (overall_b.py)
    postrefine: bool = True  # refine each crystal's partiality width (exponent kappa)
    partiality_model: str = "gaussian"  # "gaussian": the trial's estimate; "unity": p = 1
    trial_domain_size_a: float = 5000.0  # the trial's partiality model (integration section)
    trial_mosaicity_deg: float = 0.05
    trial_bandwidth: float = 2.5e-3
    reject_delta_cc_sigma: float = 0.0  # reject images whose removal raises CC1/2 this many sd
    min_image_cc: float = 0.2  # images correlating less with the merge are rejected (<= -1: off)
    crystal_resolution: bool = False  # cut each crystal where it stops carrying the signal
    crystal_min_signal: float = 0.3  # fraction of the predicted signal (see rejection.py)
    ambiguity_cycles: int = 30
    ambiguity_subset: int = 2000  # images whose settings are resolved among themselves first
    shells: int = 10
    free_fraction: float = 0.05  # of reflections flagged free (FreeR_flag 0) in the MTZ
    seed: int = 0

    def __post_init__(self):
        choices = {"error_model": ("fit", "fixed"), "partiality_model": ("gaussian", "unity")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise MergeError(
                    f"merge parameter {name}={getattr(self, name)!r}: not one of {allowed}"
                )
        if not 0.0 <= self.b_reference_percentile <= 100.0:
            raise MergeError(f"b_reference_percentile={self.b_reference_percentile}: not 0-100")

    @property
    def trial_profile(self) -> tuple[float, float, float]:
        """The trial's domain size (A), mosaicity (deg) and bandwidth: the partiality model."""
        return self.trial_domain_size_a, self.trial_mosaicity_deg, self.trial_bandwidth

    @classmethod
    def classic(cls, **overrides) -> MergeParams:
        """The merge before issue 18: one scale per image, fixed 10 % error, no rejection."""
        base = dict(
            cycles=6,
            error_model="fixed",
            scale_b=False,
            postrefine=False,
            reject_delta_cc_sigma=0.0,
            min_image_cc=-2.0,
            crystal_resolution=False,
        )
        return cls(**{**base, **overrides})


@dataclass
class Observations:
    """All observations to merge (equal-length arrays); `image` runs over every merged image."""

    image: np.ndarray
    hkl: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    partiality: np.ndarray
    n_images: int
    wavelength: np.ndarray | None = None  # per image (A); None: no bandwidth term in the profile
    tags: dict[str, np.ndarray] = field(default_factory=dict)  # per image: laser_on, delay_ns...
    # per image (n, 2): domain size (A) and mosaicity (deg) its integration's partiality used
    # (adaptive integration); None or NaN: the trial's
    integration_widths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.intensity)

    def select(self, keep: np.ndarray) -> Observations:
        return Observations(
            self.image[keep],
            self.hkl[keep],
            self.intensity[keep],
            self.sigma[keep],
            self.partiality[keep],
            self.n_images,
            self.wavelength,
            self.tags,
            self.integration_widths,
        )


@dataclass
class Merged:
    """Merged unique reflections (canonical keys) and what it took to get them."""

    keys: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    multiplicity: np.ndarray
    half1: np.ndarray  # merged from a random half of the images (NaN where unobserved)
    half2: np.ndarray
    scales: np.ndarray  # per image
    reindex: np.ndarray  # per image: index into the ambiguity operators applied
    n_rejected: int = 0
    images: ImageModel | None = None  # per image: scale, relative B, partiality exponent
    error_model: ErrorModel = ErrorModel()
    normal_probability_slope: float = float("nan")
    rejected_images: dict[str, int] = field(default_factory=dict)  # reason -> images
    anomalous: FriedelMerge | None = None
    half_sigma: tuple[np.ndarray, np.ndarray] | None = None
    half_multiplicity: tuple[np.ndarray, np.ndarray] | None = None
    scaled: ScaledObservations | None = None  # what was merged, for the unmerged export
    image_cc: np.ndarray | None = None  # per image: CC with the merge of the other half (NaN: -)


@dataclass
class ScaledObservations:
    """The merged observations, scaled and partiality-corrected (reindexed hkl)."""

    image: np.ndarray
    hkl: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray


def canonical_index(obs: Observations, symmetry: CrystalSymmetry) -> tuple[np.ndarray, np.ndarray]:
    """Per ambiguity operator, the unique-reflection index of every observation after reindexing.

    Returns
    -------
    index : (n_ops, n_obs) int, into `keys`
    keys : canonical keys of the unique reflections
    """
    raw = KeyIndex(pack(obs.hkl))
    hkl = unpack(raw.unique)
    per_op = [symmetry.canonical_keys(hkl @ op) for op in symmetry.ambiguity_rotations]
    keys, inverse = np.unique(np.concatenate(per_op), return_inverse=True)
    maps = inverse.reshape(len(per_op), -1)
    return maps[:, raw.inverse], keys


def normalised_intensities(obs: Observations) -> np.ndarray:
    """Partiality-corrected intensities divided by their image's mean (scale-free per image)."""
    y = obs.intensity / obs.partiality
    total = np.bincount(obs.image, y, minlength=obs.n_images)
    count = np.bincount(obs.image, minlength=obs.n_images)
    mean = np.where(total > 0, total / np.maximum(count, 1), 1.0)
    return y / mean[obs.image]


def best_settings(image, y, index, choice, n_images, n_keys) -> np.ndarray:
    """Per image, the setting whose reindexed intensities correlate best with all other images.

    `choice` is every image's current setting; its own observations are left out of the
    reference it is compared with. Images without any overlap keep their setting.
    """
    current = index[choice[image], np.arange(len(y))]
    total = np.bincount(current, y, minlength=n_keys)
    count = np.bincount(current, minlength=n_keys).astype(float)
    ccs = []
    for k, idx in enumerate(index):
        own = choice[image] == k
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.where(own, (total[idx] - y) / (count[idx] - 1), total[idx] / count[idx])
        ok = np.isfinite(ref)
        ccs.append(per_image_cc(image[ok], y[ok], ref[ok], n_images))
    ccs = np.nan_to_num(np.array(ccs), nan=-2.0)
    return np.where(ccs.max(axis=0) > -2.0, np.argmax(ccs, axis=0), choice)


def resolve_ambiguity(
    obs: Observations, index: np.ndarray, n_keys: int, params: MergeParams
) -> np.ndarray:
    """Choose each image's setting so that it agrees best with all other images (per-image CC).

    On a random subset of ``ambiguity_subset`` images, starting from random settings (seeded),
    every image is moved to its best-correlating setting until nothing moves; the symmetric
    start is unstable, so the majority setting takes over within a few cycles. All images are
    then assigned against that subset's consensus, and polished once against everybody.
    """
    rng = np.random.default_rng(params.seed)
    y = normalised_intensities(obs)
    choice = rng.integers(0, len(index), obs.n_images)
    subset = np.zeros(obs.n_images, dtype=bool)
    subset[rng.permutation(obs.n_images)[: params.ambiguity_subset]] = True
    sel = subset[obs.image]
    sub_image, sub_y, sub_index = obs.image[sel], y[sel], index[:, sel]
    for _ in range(params.ambiguity_cycles):
        new = best_settings(sub_image, sub_y, sub_index, choice, obs.n_images, n_keys)
        new = np.where(subset, new, choice)
        if np.array_equal(new, choice):
            break
        choice = new
    if subset.all():
        return choice
    # the rest against the subset's consensus: give them a setting that leaves them out of it
    rest = ~subset[obs.image]
    parked = np.where(subset, choice, -1)
    current = np.where(rest, -1, index[np.maximum(parked[obs.image], 0), np.arange(len(obs))])
    ref_total = np.bincount(current[~rest], y[~rest], minlength=n_keys)
    ref_count = np.bincount(current[~rest], minlength=n_keys).astype(float)
    ccs = []
    for idx in index:
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = ref_total[idx[rest]] / ref_count[idx[rest]]
        ok = np.isfinite(ref)
        ccs.append(per_image_cc(obs.image[rest][ok], y[rest][ok], ref[ok], obs.n_images))
    ccs = np.nan_to_num(np.array(ccs), nan=-2.0)
    choice = np.where(subset, choice, np.argmax(ccs, axis=0))
    return best_settings(obs.image, y, index, choice, obs.n_images, n_keys)


def prefilter(obs: Observations, symmetry: CrystalSymmetry, params: MergeParams) -> Observations:
    """Observations worth merging: estimated partiality, positive sigma, resolution cut."""
    keep = (obs.partiality >= params.min_partiality) & (obs.sigma > 0) & np.isfinite(obs.intensity)
    if params.d_min > 0:
        keep &= symmetry.resolution(obs.hkl) >= params.d_min
    obs = obs.select(keep)
    if params.partiality_model == "unity":
        obs.partiality = np.ones(len(obs))
    if len(obs) == 0:
        raise MergeError("no observation passes the partiality and resolution cuts")
    return obs


def profile_terms(obs: Observations, d: np.ndarray, params: MergeParams) -> ProfileTerms:
    """The partiality profile per observation: the trial's width terms, and the width each
    image's integration estimated with (flat for the unity model)."""
    wavelength = None if obs.wavelength is None else obs.wavelength[obs.image]
    trial = params.trial_profile
    used = None
    if obs.integration_widths is not None:
        widths = obs.integration_widths[obs.image]
        used = tuple(np.where(np.isnan(widths[:, k]), trial[k], widths[:, k]) for k in (0, 1))
    return ProfileTerms.create(obs.partiality, d, wavelength, trial, used)


def half_sets(obs: Observations, index, n_keys, fit: ScaleFit, halves):
    """(I_h, sigma, multiplicity) merged from each random half of the images with the final model."""
    result = []
    for h in (0, 1):
        use = fit.kept & (halves[obs.image] == h)
        Ih, wsum, _ = merged_intensities(
            index,
            fit.factor,
            obs.intensity,
            obs.sigma**2,
            np.nan_to_num(fit.intensity),
            use,
            n_keys,
            fit.error,
        )
        with np.errstate(divide="ignore"):
            result.append((Ih, 1.0 / np.sqrt(wsum), np.bincount(index[use], minlength=n_keys)))
    return result


def merge(
    obs: Observations,
    symmetry: CrystalSymmetry,
    params: MergeParams = MergeParams(),
    reference=None,
) -> Merged:
    """Merge observations into unique reflections (see module docstring).

    reference : optional (hkl, intensity) that the images are scaled against.
    """
    obs = prefilter(obs, symmetry, params)
    index, keys = canonical_index(obs, symmetry)
    reindex = (
        resolve_ambiguity(obs, index, len(keys), params)
        if len(index) > 1
        else np.zeros(obs.n_images, dtype=int)
    )
    index = index[reindex[obs.image], np.arange(len(obs))]
    ref = None if reference is None else reference_on_keys(symmetry, keys, *reference)
    d = symmetry.resolution(obs.hkl)
    terms = profile_terms(obs, d, params)
    halves = np.random.default_rng([params.seed, 1]).permutation(obs.n_images) % 2
    fit = scale_and_merge(obs, index, len(keys), 0.5 / d**2, terms, params, ref)
    drop, rejected = reject_images(obs, index, d, fit, halves, params)
    if drop.any():
        obs, index, d, terms = obs.select(~drop), index[~drop], d[~drop], terms.select(~drop)
        fit = scale_and_merge(obs, index, len(keys), 0.5 / d**2, terms, params, ref, fit)
    mult = np.bincount(index[fit.kept], minlength=len(keys))
    half = half_sets(obs, index, len(keys), fit, halves)
    seen = mult > 0
    with np.errstate(divide="ignore"):
        sigma = 1.0 / np.sqrt(fit.wsum)
    y = obs.intensity / fit.factor
    # each image against the merge of the half it is not part of: no self-agreement
    other = np.where(halves[obs.image] == 0, half[1][0][index], half[0][0][index])
    ok = fit.kept & np.isfinite(other)
    image_cc = per_image_cc(obs.image[ok], y[ok], other[ok], obs.n_images)
    z = normalised_deviations(
        index[fit.kept],
        y[fit.kept],
        (obs.sigma / fit.factor)[fit.kept] ** 2,
        fit.intensity[index][fit.kept],
        len(keys),
        fit.error,
    )
    hkl = obs.hkl
    if reindex.any():
        hkl = np.einsum("ni,nij->nj", hkl, symmetry.ambiguity_rotations[reindex[obs.image]])
    friedel = merge_friedel_mates(symmetry, hkl, index, obs, fit, halves, keys, seen)
    merged = Merged(
        keys[seen],
        fit.intensity[seen],
        sigma[seen],
        mult[seen],
        half[0][0][seen],
        half[1][0][seen],
        fit.images.G,
        reindex,
        n_rejected=int((~fit.kept).sum()),
        images=fit.images,
        error_model=fit.error,
        normal_probability_slope=normal_probability_slope(z),
        rejected_images=rejected,
        anomalous=friedel,
        half_sigma=(half[0][1][seen], half[1][1][seen]),
        half_multiplicity=(half[0][2][seen], half[1][2][seen]),
        scaled=ScaledObservations(
            obs.image[fit.kept], hkl[fit.kept], y[fit.kept], (obs.sigma / fit.factor)[fit.kept]
        ),
        image_cc=image_cc,
    )
    merged_images = np.bincount(obs.image[fit.kept], minlength=obs.n_images) > 0
    pct = params.b_reference_percentile
    shift = 0.0 if ref is not None else sharpest_b_shift(fit.images.B, merged_images, pct)
    return on_overall_b(merged, symmetry, shift)  # a reference sets the B itself


def reference_on_keys(symmetry: CrystalSymmetry, keys, hkl, intensity) -> np.ndarray:
    """Reference intensities on the merge's unique keys (NaN where the reference has none)."""
    ref_keys = symmetry.canonical_keys(hkl)
    order = np.argsort(ref_keys)
    ref_keys, intensity = ref_keys[order], intensity[order]
    pos = np.clip(np.searchsorted(ref_keys, keys), 0, max(len(ref_keys) - 1, 0))
    found = ref_keys[pos] == keys if len(ref_keys) else np.zeros(len(keys), dtype=bool)
    return np.where(found, intensity[pos] if len(ref_keys) else np.nan, np.nan)
