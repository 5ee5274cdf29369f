"""Merging integrated stills into one set of unique intensities, with its statistics.

Model: an observation of reflection h on image i is ``I = G_i * p * I_h`` (G_i the image scale,
p the estimated partiality). Scales and merged intensities are found by alternating weighted
least squares, each a handful of ``np.bincount`` passes over all observations, so 10^7
observations merge in seconds. Observations further than ``outlier_sigma`` from the model are
rejected. Where the space group is less symmetric than its lattice (e.g. P 43) every image may
be indexed in any of the equivalent settings; each image is reindexed to the setting that agrees
best with the merged data of all other images (iterated to convergence), before scaling.

Everything is vectorised over observations; equivalent reflections are grouped by the integer
keys of :mod:`kernels.symmetry`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels.symmetry import N_KEYS, CrystalSymmetry, pack, unpack


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

    def select(self, keep: np.ndarray) -> "Observations":
        return Observations(self.image[keep], self.hkl[keep], self.intensity[keep], self.sigma[keep],
                            self.partiality[keep], self.n_images)


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
    info: dict = field(default_factory=dict)


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


def weighted_means(index, values, weights, n):
    """sum(w x) / sum(w) per group (NaN for empty groups) and sum(w)."""
    wsum = np.bincount(index, weights, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(index, weights * values, minlength=n) / wsum, wsum


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


def resolve_ambiguity(obs: Observations, index: np.ndarray, n_keys: int, params: MergeParams) -> np.ndarray:
    """Choose each image's setting so that it agrees best with all other images (per-image CC).

    Starts from a random assignment (seeded); each cycle builds the per-reflection mean of the
    images' normalised, partiality-corrected intensities and moves every image to its
    best-correlating setting, its own contribution left out. Stops when nothing moves.
    """
    n_ops = len(index)
    rng = np.random.default_rng(params.seed)
    choice = rng.integers(0, n_ops, obs.n_images)
    y = obs.intensity / obs.partiality
    mean_y = np.bincount(obs.image, y, minlength=obs.n_images) / np.maximum(np.bincount(obs.image, minlength=obs.n_images), 1)
    y = y / np.where(mean_y > 0, mean_y, 1.0)[obs.image]
    for _ in range(params.ambiguity_cycles):
        current = index[choice[obs.image], np.arange(len(obs))]
        total = np.bincount(current, y, minlength=n_keys)
        count = np.bincount(current, minlength=n_keys).astype(float)
        ccs = []
        for k in range(n_ops):
            idx = index[k]
            own = choice[obs.image] == k
            with np.errstate(invalid="ignore", divide="ignore"):
                ref = np.where(own, (total[idx] - y) / (count[idx] - 1), total[idx] / count[idx])
            ok = np.isfinite(ref)
            ccs.append(per_image_cc(obs.image[ok], y[ok], ref[ok], obs.n_images))
        ccs = np.nan_to_num(np.array(ccs), nan=-2.0)
        new = np.argmax(ccs, axis=0)
        new = np.where(ccs.max(axis=0) > -2.0, new, choice)
        if np.array_equal(new, choice):
            break
        choice = new
    return choice


def scale_and_merge(obs: Observations, index: np.ndarray, n_keys: int, params: MergeParams):
    """Alternate image scales and merged intensities, rejecting outliers.

    Returns
    -------
    intensity, wsum (sum of weights G^2 p^2 / var per reflection), scales, kept (bool per obs)
    """
    G = np.ones(obs.n_images)
    kept = np.ones(len(obs), dtype=bool)
    p, I = obs.partiality, obs.intensity
    Ih = np.zeros(n_keys)
    for cycle in range(params.cycles):
        model_h = G[obs.image] * p
        var = obs.sigma**2 + (params.error_fraction * model_h * np.maximum(Ih[index], 0.0)) ** 2
        w = kept / var
        Ih, wsum = weighted_means(index, I / model_h, w * model_h**2, n_keys)
        Ih = np.nan_to_num(Ih)
        x = p * Ih[index]
        G_new, _ = weighted_means(obs.image, I / np.where(x != 0, x, np.nan), w * x**2, obs.n_images)
        G = np.where(np.isfinite(G_new) & (G_new > 0), G_new, G)
        G /= np.median(G)
        if cycle >= 1:  # reject against a model that has seen the data once
            model = G[obs.image] * p * Ih[index]
            z = (I - model) / np.sqrt(obs.sigma**2 + (params.error_fraction * model) ** 2)
            kept = np.abs(z) < params.outlier_sigma
    model_h = G[obs.image] * p
    var = obs.sigma**2 + (params.error_fraction * model_h * np.maximum(Ih[index], 0.0)) ** 2
    w = kept / var
    Ih, wsum = weighted_means(index, I / model_h, w * model_h**2, n_keys)
    return Ih, wsum, G, kept


def merge(obs: Observations, symmetry: CrystalSymmetry, params: MergeParams = MergeParams()) -> Merged:
    """Merge observations into unique reflections (see module docstring)."""
    keep = (obs.partiality >= params.min_partiality) & (obs.sigma > 0) & np.isfinite(obs.intensity)
    if params.d_min > 0:
        keep &= symmetry.resolution(obs.hkl) >= params.d_min
    obs = obs.select(keep)
    if len(obs) == 0:
        raise MergeError("no observation passes the partiality and resolution cuts")
    index, keys = canonical_index(obs, symmetry)
    reindex = (resolve_ambiguity(obs, index, len(keys), params) if len(index) > 1
               else np.zeros(obs.n_images, dtype=int))
    index = index[reindex[obs.image], np.arange(len(obs))]
    Ih, wsum, G, kept = scale_and_merge(obs, index, len(keys), params)
    mult = np.bincount(index[kept], minlength=len(keys))
    halves = np.random.default_rng([params.seed, 1]).permutation(obs.n_images) % 2
    half = []
    for h in (0, 1):
        sel = kept & (halves[obs.image] == h)
        model_h = G[obs.image[sel]] * obs.partiality[sel]
        w = 1.0 / (obs.sigma[sel] ** 2 + (params.error_fraction * model_h * np.maximum(Ih[index[sel]], 0.0)) ** 2)
        half.append(weighted_means(index[sel], obs.intensity[sel] / model_h, w * model_h**2, len(keys))[0])
    seen = mult > 0
    with np.errstate(divide="ignore"):
        sigma = 1.0 / np.sqrt(wsum)
    return Merged(keys[seen], Ih[seen], sigma[seen], mult[seen], half[0][seen], half[1][seen], G, reindex,
                  n_rejected=int((~kept).sum()))
