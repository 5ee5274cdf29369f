"""Which crystals, and which of their reflections, a merge should leave out.

Three tests on the first merge, each vectorised over all observations:

* ΔCC½ (CrystFEL's ``--deltacchalf``): CC½ of the merge minus CC½ without the crystal, computed
  exactly for every crystal at once from the sums that make up CC½ (a crystal only changes its
  own half set at the reflections it observed). Crystals whose removal *raises* CC½ by more
  than ``reject_delta_cc_sigma`` robust standard deviations are rejected.
* correlation with the merge below ``min_image_cc`` (misindexed or non-isomorphous crystals).
* a per-crystal resolution limit: reflections from the first resolution shell on in which the
  crystal's intensities carry less than ``crystal_min_signal`` of the signal that the merge
  predicts for them are dropped.
"""

from __future__ import annotations

import numpy as np

LIMIT_SHELLS = 10  # equal-count resolution shells the per-crystal limit is found over


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


def cc_from_sums(n, sx, sy, sxx, syy, sxy):
    """Pearson correlation from its six sums (arrays broadcast)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sxy - sx * sy / n) / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))


def delta_cc_half(index, image, y, w, in_half, n_keys, n_images) -> np.ndarray:
    """Per image, CC½ with all images minus CC½ without it (positive: the image helps).

    y, w : scale-corrected intensities and their weights; in_half : 0/1 per observation.
    """
    sums = [
        np.bincount(index[in_half == h], (w * y)[in_half == h], minlength=n_keys) for h in (0, 1)
    ]
    wts = [np.bincount(index[in_half == h], w[in_half == h], minlength=n_keys) for h in (0, 1)]
    both = (wts[0] > 0) & (wts[1] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [np.where(both, s / wt, 0.0) for s, wt in zip(sums, wts)]
    x, v = means
    totals = np.array([both.sum(), x.sum(), v.sum(), (x * x).sum(), (v * v).sum(), (x * v).sum()])
    # the observation's own half loses it; the other half's value at that key is unchanged
    own_s = np.where(in_half == 0, sums[0][index], sums[1][index]) - w * y
    own_w = np.where(in_half == 0, wts[0][index], wts[1][index]) - w
    gone = own_w <= 1e-12 * np.maximum(w, 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        new = np.where(gone, 0.0, own_s / own_w)
    old = np.where(in_half == 0, x[index], v[index])
    other = np.where(in_half == 0, v[index], x[index])
    counted = both[index]
    dn = np.where(counted & gone, -1.0, 0.0)
    d_own = np.where(counted, new - old, 0.0)
    d_own2 = np.where(counted, new**2 - old**2, 0.0)
    d_other = np.where(counted & gone, -other, 0.0)
    d_other2 = np.where(counted & gone, -(other**2), 0.0)
    d_cross = d_own * other
    first = in_half == 0  # own half is x for half 0, v for half 1

    def per_image(values):
        return np.bincount(image, values, minlength=n_images)

    n = totals[0] + per_image(dn)
    sx = totals[1] + per_image(np.where(first, d_own, d_other))
    sy = totals[2] + per_image(np.where(first, d_other, d_own))
    sxx = totals[3] + per_image(np.where(first, d_own2, d_other2))
    syy = totals[4] + per_image(np.where(first, d_other2, d_own2))
    sxy = totals[5] + per_image(d_cross)
    return cc_from_sums(totals[0], *totals[1:]) - cc_from_sums(n, sx, sy, sxx, syy, sxy)


def resolution_limit_mask(image, d, intensity, prediction, w, n_images, threshold) -> np.ndarray:
    """Observations within their crystal's resolution limit (see module docstring).

    Per crystal and shell, the fraction of the predicted signal the observations carry,
    ``sum(w m I) / sum(w m^2)`` (m the prediction): a matched filter with the merge as template.
    A crystal's data end before its first shell below `threshold` (the lowest is always kept).
    """
    edges = np.quantile(d**-2.0, np.linspace(0, 1, LIMIT_SHELLS + 1)[1:-1])
    shell = np.searchsorted(edges, d**-2.0)
    cell = image * LIMIT_SHELLS + shell
    size = n_images * LIMIT_SHELLS
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = np.bincount(cell, w * prediction * intensity, minlength=size) / np.bincount(
            cell, w * prediction**2, minlength=size
        )
    bad = (np.nan_to_num(signal, nan=1.0) < threshold).reshape(n_images, LIMIT_SHELLS)
    bad[:, 0] = False
    first_bad = np.where(bad.any(axis=1), np.argmax(bad, axis=1), LIMIT_SHELLS)
    return shell < first_bad[image]


def reject_images(obs, index, d, fit, halves, params) -> tuple[np.ndarray, dict[str, int]]:
    """Observations to drop (per observation) and how many images each test rejected."""
    n_images, kept = obs.n_images, fit.kept
    y = obs.intensity / fit.factor
    w = fit.factor**2 / fit.error.variance(obs.sigma**2, fit.factor * fit.intensity[index])
    seen = np.bincount(obs.image[kept], minlength=n_images) > 0
    bad = np.zeros(n_images, dtype=bool)
    rejected: dict[str, int] = {}
    if params.min_image_cc > -1:
        cc = per_image_cc(obs.image[kept], y[kept], fit.intensity[index][kept], n_images)
        low = seen & (np.nan_to_num(cc, nan=-2.0) < params.min_image_cc)
        rejected["low_cc_to_merge"] = int(low.sum())
        bad |= low
    if params.reject_delta_cc_sigma > 0:
        sel = kept & ~bad[obs.image]
        dcc = delta_cc_half(
            index[sel],
            obs.image[sel],
            y[sel],
            w[sel],
            halves[obs.image[sel]],
            len(fit.wsum),
            n_images,
        )
        ok = seen & ~bad & np.isfinite(dcc)
        if ok.sum() >= 10:
            centre = np.median(dcc[ok])
            spread = 1.4826 * np.median(np.abs(dcc[ok] - centre))
            worse = ok & (dcc < 0) & (dcc < centre - params.reject_delta_cc_sigma * spread)
            rejected["delta_cc_half"] = int(worse.sum())
            bad |= worse
    drop = bad[obs.image]
    if params.crystal_resolution:
        prediction = fit.factor * fit.intensity[index]
        within = resolution_limit_mask(
            obs.image,
            d,
            obs.intensity,
            prediction,
            kept * w / fit.factor**2,
            n_images,
            params.crystal_min_signal,
        )
        rejected["observations_beyond_crystal_limit"] = int((~within & ~drop).sum())
        drop |= ~within
    return drop, rejected
