"""Time-resolved (pump-probe) merging: images split by a per-event tag, one merge per set, and
the isomorphous differences between the sets.

A split names a per-event tag (``laser_on``: one set per distinct value; ``delay_ns=0,100,1000``:
one set per bin ``[0, 100)``, ``[100, 1000)``); images whose tag is missing (NaN) or outside
every bin are in no set. Each set is merged on its own with the same parameters (its images
renumbered, so its scales are its own), as CrystFEL's ``partialator --custom-split`` does.
Every other set is compared with the reference set (the first label unless named): it is put
on the reference's scale by an overall scale and relative B (fitted to the shell means, as
SCALEIT does before an isomorphous comparison), then ``Riso = 2 sum|I1 - I2| / sum|I1 + I2|``
(CrystFEL's ``compare_hkl``), ``CCiso`` and the difference intensities ``I - I_ref`` with
their sigmas are reported, overall and per shell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, unpack
from kernels.merging.algorithm import Merged, MergeError, MergeParams, Observations, merge
from kernels.merging.statistics import pearson

SCALE_SHELLS = 20  # equal-count shells the scale and relative B between two sets are fitted on


@dataclass(frozen=True)
class SplitSpec:
    """A split of the images by one per-event tag: distinct values, or bins between `edges`."""

    tag: str
    edges: tuple[float, ...] = ()
    reference: str | None = None  # the label the differences are taken against (None: first)

    @classmethod
    def parse(cls, text: str, reference: str | None = None) -> SplitSpec:
        """``TAG`` or ``TAG=EDGE,EDGE,...`` (at least two increasing edges)."""
        tag, _, edges_text = text.partition("=")
        if not tag:
            raise MergeError(f"split {text!r}: no tag name (TAG or TAG=EDGE,EDGE,...)")
        if not edges_text:
            return cls(tag, (), reference)
        try:
            edges = tuple(float(v) for v in edges_text.split(","))
        except ValueError:
            raise MergeError(f"split {text!r}: bin edges are not numbers") from None
        if len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise MergeError(f"split {text!r}: needs at least two increasing bin edges")
        return cls(tag, edges, reference)


def value_label(value: float) -> str:
    """A tag value as a set's label (integers without a decimal point)."""
    return f"{value:g}"


def image_sets(tags: dict[str, np.ndarray], spec: SplitSpec) -> dict[str, np.ndarray]:
    """Per set label, the mask of the images in it (see module docstring).

    Raises
    ------
    MergeError
        No such tag, a set left empty (a bin without images), fewer than two sets, or a
        reference label that is not one of the sets.
    """
    if spec.tag not in tags:
        raise MergeError(
            f"split by {spec.tag!r}: no such per-event tag (known: {sorted(tags) or 'none'})"
        )
    values = np.asarray(tags[spec.tag], dtype=float)
    known = np.isfinite(values)
    if spec.edges:
        bins = np.searchsorted(spec.edges, values, side="right") - 1
        inside = known & (bins >= 0) & (bins < len(spec.edges) - 1)
        sets = {
            f"{value_label(lo)}-{value_label(hi)}": inside & (bins == i)
            for i, (lo, hi) in enumerate(zip(spec.edges, spec.edges[1:]))
        }
    else:
        sets = {value_label(v): known & (values == v) for v in np.unique(values[known])}
    empty = [label for label, mask in sets.items() if not mask.any()]
    if empty:
        raise MergeError(f"split by {spec.tag!r} leaves set(s) {empty} without any image")
    if len(sets) < 2:
        raise MergeError(
            f"split by {spec.tag!r} gives {len(sets)} set(s) {sorted(sets)}: nothing to compare"
        )
    if spec.reference is not None and spec.reference not in sets:
        raise MergeError(
            f"split by {spec.tag!r}: reference set {spec.reference!r} is not one of {list(sets)}"
        )
    return sets


def image_subset(obs: Observations, images: np.ndarray) -> Observations:
    """The observations of the images in mask `images`, renumbered 0..n-1 (per-image data too)."""
    new_number = np.cumsum(images) - 1
    keep = images[obs.image]
    sub = obs.select(keep)
    sub.image = new_number[sub.image]
    sub.n_images = int(images.sum())
    sub.wavelength = None if obs.wavelength is None else obs.wavelength[images]
    sub.tags = {name: values[images] for name, values in obs.tags.items()}
    if obs.integration_widths is not None:
        sub.integration_widths = obs.integration_widths[images]
    return sub


@dataclass
class IsoDifference:
    """A set against the reference set on their common reflections (canonical keys)."""

    keys: np.ndarray
    reference: np.ndarray  # I of the reference set
    scaled: np.ndarray  # I of the set on the reference's scale
    delta: np.ndarray  # scaled - reference
    sigma: np.ndarray
    scale: float
    relative_b: float  # of the set relative to the reference, A^2
    riso: float
    cc_iso: float
    shells: list[dict]


def riso(a: np.ndarray, b: np.ndarray) -> float:
    """2 sum|a - b| / sum|a + b| (NaN without data)."""
    denominator = np.sum(np.abs(a + b))
    return float(2.0 * np.sum(np.abs(a - b)) / denominator) if denominator > 0 else float("nan")


def equal_count_shells(d: np.ndarray, n_shells: int) -> np.ndarray:
    """Shell number (0 = lowest resolution) of each reflection, shells of equal counts in 1/d^2."""
    x = d**-2.0
    edges = np.quantile(x, np.linspace(0, 1, n_shells + 1)[1:-1])
    return np.searchsorted(edges, x)


def relative_scale(ref: np.ndarray, other: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """(k, B) with ``k exp(-B q) other`` on the scale of `ref`: a line through the log ratios of
    the shell means (shells of equal counts; q = 1 / (2 d^2))."""
    shell = equal_count_shells(np.sqrt(0.5 / q), SCALE_SHELLS)
    count = np.bincount(shell, minlength=SCALE_SHELLS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ref = np.bincount(shell, ref, minlength=SCALE_SHELLS) / count
        mean_other = np.bincount(shell, other, minlength=SCALE_SHELLS) / count
        mean_q = np.bincount(shell, q, minlength=SCALE_SHELLS) / count
        log_ratio = np.log(mean_ref / mean_other)
    ok = np.isfinite(log_ratio) & (count > 0)
    if ok.sum() < 2:
        raise MergeError("too few common reflections to scale the split sets onto each other")
    slope, intercept = np.polyfit(mean_q[ok], log_ratio[ok], 1, w=np.sqrt(count[ok]))
    return float(np.exp(intercept)), float(-slope)


def iso_difference(
    symmetry: CrystalSymmetry, ref: Merged, other: Merged, n_shells: int
) -> IsoDifference:
    """`other` against `ref` (see module docstring); refused without common reflections."""
    keys, i_ref, i_other = np.intersect1d(ref.keys, other.keys, return_indices=True)
    ok = np.isfinite(ref.intensity[i_ref]) & np.isfinite(other.intensity[i_other])
    keys, i_ref, i_other = keys[ok], i_ref[ok], i_other[ok]
    if len(keys) < 3 * n_shells:
        raise MergeError(f"the split sets have {len(keys)} reflections in common: too few")
    d = symmetry.resolution(unpack(keys))
    q = 0.5 / d**2
    a = ref.intensity[i_ref]
    k, b = relative_scale(a, other.intensity[i_other], q)
    factor = k * np.exp(-b * q)
    scaled = factor * other.intensity[i_other]
    sigma = np.hypot(ref.sigma[i_ref], factor * other.sigma[i_other])
    shell = equal_count_shells(d, n_shells)
    shells = [
        {
            "d_min": float(d[shell == s].min()),
            "n": int((shell == s).sum()),
            "riso": riso(scaled[shell == s], a[shell == s]),
            "cc_iso": pearson(scaled[shell == s], a[shell == s]),
        }
        for s in range(n_shells)
    ]
    return IsoDifference(
        keys, a, scaled, scaled - a, sigma, k, b, riso(scaled, a), pearson(scaled, a), shells
    )


@dataclass
class SplitMerge:
    """One merge per set, and each non-reference set's difference from the reference set."""

    spec: SplitSpec
    reference: str
    images: dict[str, int]  # per set label
    merges: dict[str, Merged]
    differences: dict[str, IsoDifference]


def merge_splits(
    obs: Observations,
    symmetry: CrystalSymmetry,
    spec: SplitSpec,
    params: MergeParams = MergeParams(),
    reference=None,
) -> SplitMerge:
    """Merge each set of the split on its own and compare every set with the reference set."""
    sets = image_sets(obs.tags, spec)
    merges = {
        label: merge(image_subset(obs, mask), symmetry, params, reference)
        for label, mask in sets.items()
    }
    ref_label = spec.reference if spec.reference is not None else next(iter(sets))
    differences = {
        label: iso_difference(symmetry, merges[ref_label], merged, params.shells)
        for label, merged in merges.items()
        if label != ref_label
    }
    images = {label: int(mask.sum()) for label, mask in sets.items()}
    return SplitMerge(spec, ref_label, images, merges, differences)


def truth_difference(symmetry: CrystalSymmetry, keys, truth_ref, truth_other) -> np.ndarray:
    """The true ``I_other - I_ref`` on `keys` from two (hkl, I) truths (NaN where either lacks)."""

    def on_keys(truth):
        hkl, intensity = truth
        truth_keys = symmetry.canonical_keys(hkl)
        order = np.argsort(truth_keys)
        pos = np.clip(np.searchsorted(truth_keys[order], keys), 0, len(order) - 1)
        return np.where(truth_keys[order][pos] == keys, intensity[order][pos], np.nan)

    return on_keys(truth_other) - on_keys(truth_ref)


def difference_truth_cc(symmetry: CrystalSymmetry, diff: IsoDifference, truth_ref, truth_other):
    """Correlation of the difference intensities with the true difference (common reflections)."""
    true = truth_difference(symmetry, diff.keys, truth_ref, truth_other)
    ok = np.isfinite(true)
    return pearson(diff.delta[ok], true[ok])
