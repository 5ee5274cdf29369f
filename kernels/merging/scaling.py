"""Per-image scaling with post-refinement of the partiality, alternating with the merge.

An observation of reflection h on image i is modelled as

    I = G_i * exp(-B_i / (2 d^2)) * p_i * I_h

with G_i the image scale, B_i its B factor relative to the other images (``exp(-2 B
(sin theta / lambda)^2)``) and p_i the partiality refined per crystal. The trial estimated
``p = exp(-eps^2 / 2 w^2)`` with its own width ``w^2 = 1/D^2 + (m s)^2 + (bw lambda s^2 / 2)^2``
(domain size D, mosaicity m, bandwidth bw); from p and w the excitation error eps^2 follows, so
each crystal's own domain size and mosaicity (``D_i^-2 = e^a_i D^-2``, ``m_i^2 = e^c_i m^2``)
give its partiality without any geometry: CrystFEL's and cctbx.xfel's post-refinement of the
profile, from the reflection table alone. Where the integration estimated p with each image's own
width (adaptive integration: its own D and m), eps^2 comes from that width, and every crystal
starts from the model that reproduces its integration's p: taking eps^2 from the trial's width
instead made a crystal whose estimate was 5x too wide look like a B factor of -17 A^2 (the error
of p then grows towards low resolution), which cost the whole merge's CC to truth 0.995 -> 0.952. (G, B, a, c) of every image are refined by
Gauss-Newton against the current merge (or a reference), the per-image normal equations
assembled with ``np.bincount``, alternating with the merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kernels.merging.error_model import ErrorModel, fit_error_model

if TYPE_CHECKING:
    from kernels.merging.algorithm import MergeParams, Observations

B_LIMITS = (-60.0, 150.0)  # A^2, relative B factors a crystal can plausibly have
LOG_WIDTH_LIMITS = (-5.0, 5.0)  # a, c: width terms within e^5 of the trial's
MAX_B_STEP = 20.0
MAX_LOG_STEP = 0.7


def width_terms(d, wavelength, domain_size_a, mosaicity_deg, bandwidth):
    """The domain, mosaic and band terms of the Gaussian profile's squared width per observation
    (D and m scalars or per observation; wavelength per observation, or None: no band term)."""
    s2 = 1.0 / d**2
    band = 0.0 if wavelength is None else (bandwidth * wavelength / 2.0) ** 2 * s2 * s2
    domain = np.broadcast_to(np.asarray(domain_size_a, dtype=float) ** -2.0, len(d))
    mosaic = np.radians(mosaicity_deg) ** 2 * s2
    return domain.astype(float), mosaic, np.broadcast_to(band, len(d)).astype(float)


@dataclass(frozen=True)
class ProfileTerms:
    """Per observation: the estimate's log partiality, the three terms of the trial's squared
    width (the basis the crystals' widths are refined on) and the squared width the estimate
    was made with (eps^2 = -2 used log_p)."""

    log_p: np.ndarray
    domain: np.ndarray
    mosaic: np.ndarray
    band: np.ndarray
    used: np.ndarray

    @classmethod
    def create(cls, partiality, d, wavelength, trial, used=None):
        """trial : (domain size A, mosaicity deg, bandwidth); used : per observation (domain size,
        mosaicity) the integration estimated with (None: the trial's)."""
        domain, mosaic, band = width_terms(d, wavelength, *trial)
        used_width = (
            domain + mosaic + band
            if used is None
            else sum(width_terms(d, wavelength, *used, trial[2]))
        )
        return cls(np.log(partiality), domain, mosaic, band, used_width)

    def select(self, keep: np.ndarray) -> ProfileTerms:
        return ProfileTerms(
            self.log_p[keep], self.domain[keep], self.mosaic[keep], self.band[keep], self.used[keep]
        )


@dataclass
class ImageModel:
    """Per-image scale G, relative B factor, and log factors a, c of its width terms."""

    G: np.ndarray
    B: np.ndarray
    a: np.ndarray
    c: np.ndarray

    @classmethod
    def start(cls, n_images: int, a=None, c=None) -> ImageModel:
        """Scale 1, relative B 0, width factors `a`, `c` (default 0: the trial's width)."""
        a = np.zeros(n_images) if a is None else a
        return cls(np.ones(n_images), np.zeros(n_images), a, np.zeros(n_images) if c is None else c)

    @classmethod
    def integration_start(cls, used_widths, trial) -> ImageModel:
        """The start that reproduces each image's integration partiality: a = log(D_trial^2 /
        D^2), c = log(m^2 / m_trial^2), clipped to the limits; the trial's where D or m is NaN.

        used_widths : (n_images, 2) domain size (A) and mosaicity (deg) each image's integration
        used; trial : (domain size, mosaicity, bandwidth) the width terms are refined on.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.log(trial[0] ** 2 / used_widths[:, 0] ** 2)
            c = np.log(used_widths[:, 1] ** 2 / trial[1] ** 2)
        start = [np.clip(np.where(np.isnan(v), 0.0, v), *LOG_WIDTH_LIMITS) for v in (a, c)]
        return cls.start(len(used_widths), *start)

    def widths(self, image, terms: ProfileTerms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This model's domain and mosaic width terms and total squared width per observation."""
        domain = np.exp(self.a)[image] * terms.domain  # exp per image, then gathered
        mosaic = np.exp(self.c)[image] * terms.mosaic
        return domain, mosaic, domain + mosaic + terms.band

    def log_partiality(self, image, terms: ProfileTerms) -> np.ndarray:
        """log p_i = log p_estimate * w_used^2 / w_i^2."""
        return terms.log_p * terms.used / self.widths(image, terms)[2]

    def factor(self, image, q, terms: ProfileTerms, log_p=None) -> np.ndarray:
        """``G exp(-B q) p_i`` per observation (q = 1 / (2 d^2)); log_p if already known."""
        log_p = self.log_partiality(image, terms) if log_p is None else log_p
        return self.G[image] * np.exp(log_p - self.B[image] * q)

    def partiality(self, image, terms: ProfileTerms) -> np.ndarray:
        """The refined partiality of every observation."""
        return np.exp(self.log_partiality(image, terms))

    def domain_size_factor(self) -> np.ndarray:
        """Each crystal's domain size relative to the trial's (e^(-a/2))."""
        return np.exp(-self.a / 2)

    def mosaicity_factor(self) -> np.ndarray:
        """Each crystal's mosaicity relative to the trial's (e^(c/2))."""
        return np.exp(self.c / 2)


def merged_intensities(index, gp, intensity, sigma2, prior, kept, n_keys, error: ErrorModel):
    """Weighted least squares I_h = sum(w gp I) / sum(w gp^2) for the model I = gp * I_h.

    ``gp`` is the observation's factor (scale, B, partiality); w = kept / error.variance(sigma^2,
    gp I_prior). Returns I_h (NaN where unobserved), sum(w gp^2) (the inverse variance) and w.
    """
    w = kept / error.variance(sigma2, gp * np.maximum(prior[index], 0.0))
    wgp = w * gp
    den = np.bincount(index, wgp * gp, minlength=n_keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(index, wgp * intensity, minlength=n_keys) / den, den, w


def per_image_normal_equations(image, jacobian, residual, w, n_images):
    """Sum over each image's observations of J^T W J (n, k, k) and J^T W r (n, k)."""
    k = len(jacobian)
    JtJ = np.empty((n_images, k, k))
    Jtr = np.empty((n_images, k))
    for a in range(k):
        wa = w * jacobian[a]
        Jtr[:, a] = np.bincount(image, wa * residual, minlength=n_images)
        for b in range(a, k):
            JtJ[:, a, b] = JtJ[:, b, a] = np.bincount(image, wa * jacobian[b], minlength=n_images)
    return JtJ, Jtr


def solve_steps(JtJ: np.ndarray, Jtr: np.ndarray) -> np.ndarray:
    """Per-image Gauss-Newton steps; images with singular equations get no step."""
    ridge = 1e-9 * np.trace(JtJ, axis1=1, axis2=2)[:, None, None] * np.eye(JtJ.shape[1])
    steps = np.zeros_like(Jtr)
    finite = np.isfinite(JtJ).all(axis=(1, 2)) & np.isfinite(Jtr).all(axis=1)
    with np.errstate(invalid="ignore"):
        ok = finite & (np.linalg.det(np.where(finite[:, None, None], JtJ + ridge, 0.0)) > 0)
    steps[ok] = np.linalg.solve(JtJ[ok] + ridge[ok], Jtr[ok][..., None])[..., 0]
    return np.where(np.isfinite(steps), steps, 0.0)


def refine_images(
    state: ImageModel,
    image,
    intensity,
    target,
    w,
    q,
    terms: ProfileTerms,
    refine_b,
    postrefine,
    relative=True,
) -> ImageModel:
    """One Gauss-Newton step of every image's (G[, B][, a, c]) against merged `target` I_h.

    With G alone this is the closed-form weighted least-squares scale of the classic merge.
    relative : scales to median 1 and B to median 0, the merge carrying the overall scale and
    B; False when scaling against a reference, whose scale the images then take.
    """
    n = len(state.G)
    domain, mosaic, total = state.widths(image, terms)
    log_p = terms.log_p * terms.used / total
    model = state.factor(image, q, terms, log_p) * target
    jacobian = [model / state.G[image]]
    if refine_b:
        jacobian.append(-q * model)
    if postrefine:
        dlogp = -log_p / total  # d log p / d (w_i^2)
        jacobian += [model * dlogp * domain, model * dlogp * mosaic]
    JtJ, Jtr = per_image_normal_equations(image, jacobian, intensity - model, w, n)
    if postrefine:  # a weak prior keeps a width term the data cannot see at the trial's
        diag = np.einsum("nii->ni", JtJ)
        prior = 1e-3 * diag.max(axis=1)
        for k, value in ((-2, state.a), (-1, state.c)):
            JtJ[:, k, k] += prior
            Jtr[:, k] -= prior * value
    step = solve_steps(JtJ, Jtr)
    G_new = state.G + step[:, 0]
    G = np.where(np.isfinite(G_new) & (G_new > 0), G_new, state.G)
    if relative:
        G /= np.median(G)
    B, a, c = state.B, state.a, state.c
    if refine_b:
        B = np.clip(B + np.clip(step[:, 1], -MAX_B_STEP, MAX_B_STEP), *B_LIMITS)
        B = B - np.median(B) if relative else B
    if postrefine:
        a = np.clip(a + np.clip(step[:, -2], -MAX_LOG_STEP, MAX_LOG_STEP), *LOG_WIDTH_LIMITS)
        c = np.clip(c + np.clip(step[:, -1], -MAX_LOG_STEP, MAX_LOG_STEP), *LOG_WIDTH_LIMITS)
    return ImageModel(G, B, a, c)


@dataclass
class ScaleFit:
    """The converged model: merged I_h, its inverse variances, per-image model, error model."""

    intensity: np.ndarray
    wsum: np.ndarray
    images: ImageModel
    error: ErrorModel
    kept: np.ndarray  # per observation: not an outlier, refined partiality above the cut
    factor: np.ndarray  # per observation: G exp(-B q) p^kappa


def scale_and_merge(
    obs: Observations, index, n_keys, q, terms, params: MergeParams, reference=None, start=None
):
    """Alternate per-image refinement and merged intensities, refitting errors, rejecting outliers.

    q : 1 / (2 d^2) per observation; terms : the trial's partiality profile. reference :
    optional I_h per key (NaN where absent) that the images are scaled against instead of the
    current merge. start : a ScaleFit to continue from (after rejections), for half the cycles.
    """
    if start is None:
        state = (
            ImageModel.start(obs.n_images)
            if obs.integration_widths is None
            else ImageModel.integration_start(obs.integration_widths, params.trial_profile)
        )
        error, Ih = ErrorModel(1.0, params.error_fraction), np.zeros(n_keys)
        cycles = range(params.cycles)
    else:
        state, error, Ih = start.images, start.error, start.intensity
        cycles = range(2, 2 + max(2, params.cycles // 2))
    kept = np.ones(len(obs), dtype=bool)
    I, sigma2 = obs.intensity, obs.sigma**2
    gp = state.factor(obs.image, q, terms)
    for cycle in cycles:
        Ih, _, w = merged_intensities(index, gp, I, sigma2, Ih, kept, n_keys, error)
        Ih = np.nan_to_num(Ih)
        target = Ih
        if reference is not None:
            w = np.where(np.isfinite(reference[index]), w, 0.0)
            target = np.nan_to_num(reference)
        # B and the profile only once the scales have settled on a first merge
        refine = dict(
            refine_b=params.scale_b and cycle >= 1, postrefine=params.postrefine and cycle >= 2
        )
        state = refine_images(
            state, obs.image, I, target[index], w, q, terms, **refine, relative=reference is None
        )
        log_p = state.log_partiality(obs.image, terms)
        gp = state.factor(obs.image, q, terms, log_p)  # the refined model, for the next merge too
        if cycle >= 1:  # errors and outliers against a model that has seen the data once
            # from the first post-refined merge on, every other cycle (it changes slowly)
            if params.error_model == "fit" and cycle >= 3 and cycle % 2 == 1:
                # on every observation (the fit is robust): fitting the kept ones only would
                # let a too-small b reject exactly the observations that show it is too small
                error = fit_error_model(index, I, sigma2, gp, Ih[index], n_keys, error)
            model = gp * Ih[index]
            kept = (I - model) ** 2 / error.variance(sigma2, model) < params.outlier_sigma**2
            kept &= log_p >= np.log(params.min_partiality)
    Ih, wsum, _ = merged_intensities(index, gp, I, sigma2, Ih, kept, n_keys, error)
    return ScaleFit(Ih, wsum, state, error, kept, gp)
