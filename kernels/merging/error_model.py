"""The error model of merged observations, ``var(I) = a (sigma^2 + (b * model)^2)``, fitted to the data.

``a`` inflates the counting errors, ``b`` is the fraction of the intensity that the model of an
observation (scale, B factor, partiality) cannot predict. Both are fitted, as cctbx.xfel and
DIALS do, so that each observation's deviation from the mean of the *other* observations of its
reflection has unit variance in every intensity bin; the normal-probability plot of those
deviations then has slope 1 (``normal_probability_slope``), reported with the parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

log = logging.getLogger(__name__)

FIT_BINS = 20  # intensity bins of equal counts the parameters are fitted over
FIT_ROUNDS = 2  # leave-one-out variances depend on the model (each merge cycle refits too)
FIT_SAMPLE = 200_000  # observations the bins are made of
A_LIMITS = (0.2, 20.0)
B_MAX = 0.5  # a model error beyond half the intensity is no model
CHI2_MEDIAN = 0.4549364  # median of chi-squared with one degree of freedom


@dataclass(frozen=True)
class ErrorModel:
    """``var = a (sigma^2 + (b * model)^2)``; ``ErrorModel(1, e)`` is the fixed fraction ``e``."""

    a: float = 1.0
    b: float = 0.1

    def variance(self, sigma2: np.ndarray, model: np.ndarray) -> np.ndarray:
        """Variance of observations with counting variance `sigma2` and predicted intensity `model`."""
        return self.a * (sigma2 + (self.b * model) ** 2)


def leave_one_out(
    index, y, var_y, n_keys, sample=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each observation's deviation from the weighted mean of the others of its reflection.

    sample : optional observation numbers to return them for (the sums are over all).
    Returns deviation, the variance of that mean, and a mask of observations that have others.
    """
    w = 1.0 / var_y
    key_w, key_wy = (
        np.bincount(index, w, minlength=n_keys),
        np.bincount(index, w * y, minlength=n_keys),
    )
    if sample is not None:
        index, y, w = index[sample], y[sample], w[sample]
    sw = key_w[index] - w
    swy = key_wy[index] - w * y
    others = sw > 1e-12 * w
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_others = swy / sw
        v_others = 1.0 / sw
    return np.where(others, y - mean_others, 0.0), np.where(others, v_others, 0.0), others


def with_others(index, var_y, n_keys) -> np.ndarray:
    """Numbers of the observations whose reflection has other observations (weight > 0)."""
    w = 1.0 / var_y
    return np.flatnonzero(np.bincount(index, w, minlength=n_keys)[index] - w > 1e-12 * w)


def normalised_deviations(index, y, sigma_y2, model_y, n_keys, model: ErrorModel) -> np.ndarray:
    """Deviations from the other observations in units of their expected error (should be N(0,1))."""
    var_y = model.variance(sigma_y2, model_y)
    dev, v_others, others = leave_one_out(index, y, var_y, n_keys)
    return dev[others] / np.sqrt(var_y[others] + v_others[others])


def fit_step(model: ErrorModel, z2, expected, others_var, sigma2, prediction) -> ErrorModel:
    """One least-squares fit of (a, a b^2) over bins of equal counts in predicted intensity."""
    which = np.empty(len(z2), dtype=np.int64)
    which[np.argsort(prediction)] = np.arange(len(z2)) * FIT_BINS // len(z2)
    counts = np.bincount(which, minlength=FIT_BINS)
    ranked = np.lexsort((z2, which))  # z2 ascending within each bin
    median_z2 = z2[ranked][np.searchsorted(which[ranked], np.arange(FIT_BINS)) + counts // 2]

    def bin_mean(v):
        return np.bincount(which, v, minlength=FIT_BINS) / counts

    target = median_z2 / CHI2_MEDIAN * bin_mean(expected) - bin_mean(others_var)
    s2, m2 = bin_mean(sigma2), bin_mean(prediction**2)
    weight = 1.0 / np.maximum(model.a * (s2 + model.b**2 * m2), 1e-30)
    design = np.column_stack([s2, m2]) * weight[:, None]
    (a, c), *_ = np.linalg.lstsq(design, target * weight, rcond=None)
    # a and a b^2 trade off against each other over few bins: keep them physical, and move
    # halfway (geometrically) from the current model so that a poor early merge cannot run away
    a = float(np.clip(a, *A_LIMITS))
    b = float(np.clip(np.sqrt(max(c, 0.0) / a), 0.0, B_MAX))
    return ErrorModel(float(np.sqrt(a * model.a)), 0.5 * (b + model.b))


def fit_error_model(index, intensity, sigma2, factor, merged, n_keys, start: ErrorModel):
    """Fit (a, b) so that leave-one-out deviations have unit variance in every intensity bin.

    intensity, sigma2 : observations and their counting variances; factor : each one's model
    factor (scale, B, partiality), so the prediction is ``factor * merged``; merged : I_h of the
    observation's reflection. Bins hold observations of similar predicted intensity (photons),
    where ``var = a sigma^2 + a b^2 prediction^2`` is linear in (a, a b^2); each bin's variance
    is the median of the squared normalised deviations over that of chi^2(1), so crystals that
    do not belong (rejected later) and outliers do not inflate it; bins are weighted by their
    predicted variance so weak and strong bins both count.
    """
    model = start
    y, sigma_y2, prediction = intensity / factor, sigma2 / factor**2, factor * merged
    for _ in range(FIT_ROUNDS):
        var_y = model.variance(sigma_y2, merged)
        use = with_others(index, var_y, n_keys)
        if len(use) < 10 * FIT_BINS:
            log.warning("too few repeated observations to fit the error model; keeping %s", model)
            return model
        if len(use) > FIT_SAMPLE:  # the bins' statistics need no more, and sorting is the cost
            use = np.random.default_rng(len(use)).choice(use, FIT_SAMPLE, replace=False)
        dev, v_others, _ = leave_one_out(index, y, var_y, n_keys, use)
        z2 = dev**2 / (var_y[use] + v_others)
        others_var = factor[use] ** 2 * v_others  # in photons^2, like the observation's
        expected = model.variance(sigma2[use], prediction[use]) + others_var
        model = fit_step(model, z2, expected, others_var, sigma2[use], prediction[use])
    return model


def normal_probability_slope(z: np.ndarray) -> float:
    """Slope of sorted normalised deviations against normal quantiles, over the central |q| < 1.5."""
    if len(z) < 10:
        return float("nan")
    z = np.sort(z)
    q = ndtri((np.arange(len(z)) + 0.5) / len(z))
    central = np.abs(q) < 1.5
    return float(np.polyfit(q[central], z[central], 1)[0])
