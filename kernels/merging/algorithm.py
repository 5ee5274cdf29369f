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

from dataclasses import dataclass

import numpy as np

from kernels.crystal.symmetry import N_KEYS, CrystalSymmetry, pack, unpack


class MergeError(Exception):
    """Result sets that cannot be merged (empty, mixed trials or crystals, bad truth file)."""


@dataclass(frozen=True)
class MergeParams:
    """Tunable merging parameters."""

    min_partiality: float = 0.2
    d_min: float = 0.0  # 0: keep every resolution
    cycles: int = 6
    outlier_sigma: float = 6.0
    error_fraction: float = 0.1  # model error, as a fraction of the predicted intensity
    ambiguity_cycles: int = 30
    ambiguity_subset: int = 2000  # images whose settings are resolved among themselves first
    shells: int = 10
    seed: int = 0


@dataclass
class Observations:
    """All observations to merge (equal-length arrays); `image` runs over every merged image."""

    image: np.ndarray
    hkl: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    partiality: np.ndarray
    n_images: int

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
    image_cc: np.ndarray | None = None  # per image: CC with the merge of the other half (NaN: -)


class KeyIndex:
    """Maps packed Miller keys of observations to unique reflections, in O(n) with a lookup table."""

    def __init__(self, raw_keys: np.ndarray):
        present = np.zeros(N_KEYS, dtype=bool)
        present[raw_keys] = True
        self.unique = np.flatnonzero(present)
        table = np.full(N_KEYS, -1, dtype=np.int32)
        table[self.unique] = np.arange(len(self.unique), dtype=np.int32)
        self.inverse = table[raw_keys]


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


def per_image_cc(image, x, y, n_images):
    """Pearson correlation of x and y within each image (NaN with fewer than 3 pairs)."""

    def s(v):
        return np.bincount(image, v, minlength=n_images)

    n = s(np.ones_like(x))
    sx, sy = s(x), s(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = s(x * y) - sx * sy / n
        var = (s(x * x) - sx * sx / n) * (s(y * y) - sy * sy / n)
        cc = cov / np.sqrt(var)
    return np.where(n >= 3, cc, np.nan)


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


def merged_intensities(index, gp, intensity, sigma2, prior, kept, n_keys, error_fraction):
    """Weighted least squares I_h = sum(w gp I) / sum(w gp^2) for the model I = gp * I_h.

    ``gp`` is scale times partiality per observation; w = kept / (sigma^2 + (e gp I_prior)^2).
    Returns I_h (NaN where unobserved), sum(w gp^2) (the inverse variance) and w.
    """
    var = gp * np.maximum(prior[index], 0.0)
    var *= error_fraction
    var *= var
    var += sigma2
    w = kept / var
    wgp = w * gp
    den = np.bincount(index, wgp * gp, minlength=n_keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(index, wgp * intensity, minlength=n_keys) / den, den, w


def scale_and_merge(obs: Observations, index: np.ndarray, n_keys: int, params: MergeParams):
    """Alternate image scales and merged intensities, rejecting outliers.

    Returns
    -------
    intensity, wsum (sum of weights G^2 p^2 / var per reflection), scales, kept (bool per obs)
    """
    G = np.ones(obs.n_images)
    kept = np.ones(len(obs), dtype=bool)
    p, I = obs.partiality, obs.intensity
    sigma2 = obs.sigma**2
    Ih = np.zeros(n_keys)
    for cycle in range(params.cycles):
        Ih, _, w = merged_intensities(
            index, G[obs.image] * p, I, sigma2, Ih, kept, n_keys, params.error_fraction
        )
        Ih = np.nan_to_num(Ih)
        x = p * Ih[index]
        wx = w * x
        with np.errstate(invalid="ignore", divide="ignore"):
            G_new = np.bincount(obs.image, wx * I, minlength=obs.n_images) / np.bincount(
                obs.image, wx * x, minlength=obs.n_images
            )
        G = np.where(np.isfinite(G_new) & (G_new > 0), G_new, G)
        G /= np.median(G)
        if cycle >= 1:  # reject against a model that has seen the data once
            model = G[obs.image] * x
            z2 = (I - model) ** 2 / (sigma2 + (params.error_fraction * model) ** 2)
            kept = z2 < params.outlier_sigma**2
    Ih, wsum, _ = merged_intensities(
        index, G[obs.image] * p, I, sigma2, Ih, kept, n_keys, params.error_fraction
    )
    return Ih, wsum, G, kept


def merge(
    obs: Observations, symmetry: CrystalSymmetry, params: MergeParams = MergeParams()
) -> Merged:
    """Merge observations into unique reflections (see module docstring)."""
    keep = (obs.partiality >= params.min_partiality) & (obs.sigma > 0) & np.isfinite(obs.intensity)
    if params.d_min > 0:
        keep &= symmetry.resolution(obs.hkl) >= params.d_min
    obs = obs.select(keep)
    if len(obs) == 0:
        raise MergeError("no observation passes the partiality and resolution cuts")
    index, keys = canonical_index(obs, symmetry)
    reindex = (
        resolve_ambiguity(obs, index, len(keys), params)
        if len(index) > 1
        else np.zeros(obs.n_images, dtype=int)
    )
    index = index[reindex[obs.image], np.arange(len(obs))]
    Ih, wsum, G, kept = scale_and_merge(obs, index, len(keys), params)
    mult = np.bincount(index[kept], minlength=len(keys))
    halves = np.random.default_rng([params.seed, 1]).permutation(obs.n_images) % 2
    in_half = halves[obs.image]
    gp, sigma2 = G[obs.image] * obs.partiality, obs.sigma**2
    half = [
        merged_intensities(
            index,
            gp,
            obs.intensity,
            sigma2,
            np.nan_to_num(Ih),
            kept & (in_half == h),
            len(keys),
            params.error_fraction,
        )[0]
        for h in (0, 1)
    ]
    # each image against the merge of the half it is not part of: no self-agreement
    other = np.where(in_half == 0, half[1][index], half[0][index])
    ok = kept & np.isfinite(other)
    image_cc = per_image_cc(obs.image[ok], obs.intensity[ok] / gp[ok], other[ok], obs.n_images)
    seen = mult > 0
    with np.errstate(divide="ignore"):
        sigma = 1.0 / np.sqrt(wsum)
    return Merged(
        keys[seen],
        Ih[seen],
        sigma[seen],
        mult[seen],
        half[0][seen],
        half[1][seen],
        G,
        reindex,
        n_rejected=int((~kept).sum()),
        image_cc=image_cc,
    )
