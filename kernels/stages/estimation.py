"""What integration assumes, measured on each image: spot size and the partiality model.

Spot size: the strong indexed spots' background-subtracted photons are summed within 2 px and
within 6 px of their centroids; for a round Gaussian spot of width sigma the ratio of the two
is ``(1 - exp(-2 / sigma^2)) / (1 - exp(-18 / sigma^2))``, which is inverted for sigma. Sums
of many spots make this robust against noise that a per-pixel second moment would not be.

Partiality model: every lattice point near the Ewald sphere is a candidate; whether it was found
as a spot depends on its excitation error eps through its partiality. With the intensities of a
Wilson distribution and a detection threshold, a reflection of partiality p is found with
probability ``exp(-a / p)`` (a per resolution bin: weaker shells are found less often), so the
domain size and mosaicity that make the found/not-found pattern most likely are chosen on a grid,
``a`` of each bin maximised by Newton steps for each grid point. The spectral bandwidth is the
beam's and is not refitted: one image cannot separate an |s|^2 term from an |s| term. For speed
the many far, not-found candidates are thinned (each kept one stands for THIN_STRIDE), only the
missed candidates' terms are evaluated per Newton step (a found one's is linear in a), and the
grid is searched coarse to fine. kernels/stages/pooling.py pools the result toward the run's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DOMAIN_SIZES_A = np.geomspace(250.0, 40000.0, 20)
MOSAICITIES_DEG = np.array([0.0, 0.02, 0.05, 0.1, 0.2, 0.4])
START_MOSAICITY_DEG = 0.05
RESOLUTION_BINS = 3
INNER_PX, OUTER_PX = 2, 6
THIN_EPS = 0.003  # 1/A, not-found candidates farther from the sphere are thinned
THIN_STRIDE = 6


@dataclass(frozen=True)
class ImageModel:
    """Per-image quantities integration uses: spot width and the partiality model's widths."""

    spot_sigma_px: float
    domain_size_a: float
    mosaicity_deg: float


SIGMA_RANGE = (0.3, 4.0)  # px, widths the flux ratio is inverted within


def measure_spot_sigma(photons: np.ndarray, col, row, background, strongest: int = 40) -> float:
    """Width (px) of the spots centred at (col, row) from their inner/outer flux ratio.

    The ratio expected for a trial width is computed on the same pixels (a Gaussian sampled at
    the spots' sub-pixel positions), so pixelation does not bias the answer; the width whose
    ratio matches is found by Brent's method (a dozen evaluations, not a grid). NaN if no spot
    has positive flux.
    """
    col, row = np.asarray(col, float), np.asarray(row, float)
    rows, cols = photons.shape
    r0, c0 = np.rint(row).astype(np.int64), np.rint(col).astype(np.int64)
    inside = (np.minimum(r0, c0) > OUTER_PX) & (r0 < rows - OUTER_PX - 1)
    inside &= c0 < cols - OUTER_PX - 1
    d = np.arange(-OUTER_PX, OUTER_PX + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    rr, cc = r0[inside][:, None] + dr, c0[inside][:, None] + dc
    dist2 = (rr - row[inside][:, None]) ** 2 + (cc - col[inside][:, None]) ** 2
    values = photons[rr, cc] - np.asarray(background, float)[inside][:, None]
    outer_mask = dist2 <= OUTER_PX**2
    flux = (values * outer_mask).sum(axis=1)
    keep = np.argsort(-flux)[:strongest]
    keep = keep[flux[keep] > 0]
    if len(keep) == 0:
        return float("nan")
    values, dist2, outer_mask = values[keep], dist2[keep], outer_mask[keep]
    inner_mask = dist2 <= INNER_PX**2
    observed = (values * inner_mask).sum() / (values * outer_mask).sum()
    weight = flux[keep] / flux[keep].sum()

    def excess(log_sigma: float) -> float:
        g = np.exp(-0.5 * dist2 * np.exp(-2.0 * log_sigma)) * outer_mask
        return float(((g * inner_mask).sum(axis=1) / g.sum(axis=1)) @ weight - observed)

    # the expected ratio falls with sigma; outside the bracket the nearer end is the answer
    low, high = np.log(SIGMA_RANGE)
    if excess(low) <= 0 or excess(high) >= 0:
        return float(SIGMA_RANGE[0] if excess(low) <= 0 else SIGMA_RANGE[1])
    # scipy on first use: a run's prepare imports this module to check trial parameters
    from scipy.optimize import brentq

    return float(np.exp(brentq(excess, low, high, xtol=1e-3)))


def width2(s2: np.ndarray, domain_a, mosaicity_deg, bandwidth: float, wavelength: float):
    """Squared Gaussian width of the excitation error (1/A^2); broadcasts over model grids."""
    return (
        (1.0 / np.asarray(domain_a)) ** 2
        + np.radians(mosaicity_deg) ** 2 * s2
        + (bandwidth * wavelength / 2.0) ** 2 * s2 * s2
    )


def best_detection_rate(e_found, w_found, e_missed, w_missed, steps: int = 5) -> np.ndarray:
    """Per model (row of `e_*` = 1 / partiality, (m, n)), the log-likelihood maximised over a
    of P(found) = exp(-a e), of the found candidates (`e_found`) and the missed ones, each
    counted `w_*` times. Newton on log a (the likelihood is concave in it); a found candidate's
    term, -a e, is linear in a, so only the missed ones are evaluated per step."""
    load = e_found @ w_found  # (m,): the found candidates' terms are -a * load
    n_found = w_found.sum()
    log_a = np.full(len(load), np.log(max(n_found, 1) / max(n_found + w_missed.sum(), 1)))
    for _ in range(steps):
        a = np.exp(log_a)
        x = np.minimum(a[:, None] * e_missed, 50.0)  # e >= 1 and a > 0: x > 0
        xq = x / np.expm1(x)  # x P / (1 - P)
        # derivatives in log a of the missed terms log(1 - P) and the found ones -a e
        grad = xq @ w_missed - a * load
        hess = (xq * (1 - x - xq)) @ w_missed - a * load
        log_a = np.minimum(np.maximum(log_a - grad / np.minimum(hess, -1e-9), -12.0), 6.0)
    a = np.exp(log_a)
    x = np.minimum(a[:, None] * e_missed, 50.0)
    return np.log(-np.expm1(-x)) @ w_missed - a * load


def thinned(eps: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Weight of each candidate in the likelihood: found ones and those within THIN_EPS of the
    sphere count once, of the other (far, not found) ones every THIN_STRIDE-th counts
    THIN_STRIDE times and the rest not at all (they carry little information each)."""
    far = np.flatnonzero(~found & (np.abs(eps) > THIN_EPS))
    weight = np.ones(len(eps))
    weight[far] = 0.0
    weight[far[::THIN_STRIDE]] = THIN_STRIDE
    return weight


class PartialityLikelihood:
    """Log-likelihood of a domain size and mosaicity given which candidates were found.

    eps, s2 : excitation error and |s|^2 of every candidate lattice point; found : bool, seen
    as an indexed spot.
    """

    def __init__(self, eps, s2, found, bandwidth: float, wavelength: float):
        weight = thinned(eps, found)
        use = weight > 0
        eps, s2, found, weight = eps[use], s2[use], found[use], weight[use]
        edges = np.quantile(s2, np.linspace(0, 1, RESOLUTION_BINS + 1)[1:-1])
        bins = np.searchsorted(edges, s2)
        # per bin, the found and the missed candidates: (s2, eps, weight) of each
        self.parts = [
            [
                (s2[sel], eps[sel], weight[sel])
                for sel in ((bins == b) & found, (bins == b) & ~found)
            ]
            for b in range(RESOLUTION_BINS)
        ]
        self.bandwidth, self.wavelength = bandwidth, wavelength

    def __call__(self, domain: np.ndarray, mosaicity: np.ndarray) -> np.ndarray:
        """Log-likelihood of each (domain[i], mosaicity[i]), maximised over the detection rates."""
        domain, mosaicity = np.atleast_1d(domain), np.atleast_1d(mosaicity)
        total = np.zeros(len(domain))
        for part in self.parts:
            e_found, e_missed = (
                self.inverse_partiality(s2, eps, domain, mosaicity) for s2, eps, _ in part
            )
            total += best_detection_rate(e_found, part[0][2], e_missed, part[1][2])
        return total

    def inverse_partiality(self, s2, eps, domain, mosaicity) -> np.ndarray:
        """1 / partiality (len(domain), len(eps)) of candidates under each model."""
        w2 = width2(
            s2[None, :], domain[:, None], mosaicity[:, None], self.bandwidth, self.wavelength
        )
        return np.exp(np.minimum(0.5 * eps**2 / w2, 40.0))


def neighbours(i: int, reach: int) -> np.ndarray:
    """Indices of the domain-size grid within `reach` steps of index i."""
    return np.arange(max(i - reach, 0), min(i + reach + 1, len(DOMAIN_SIZES_A)))


def estimate_partiality_model(likelihood: PartialityLikelihood) -> tuple[float, float]:
    """Domain size (A) and mosaicity (deg) of highest likelihood.

    Searched one parameter at a time, coarse to fine: the domain size on every third grid
    point, then on the points around the best, the mosaicity on its grid, the domain size
    once more next to the best; 18 evaluations instead of the 120 of the full grid, the same
    optimum on this smooth likelihood.
    """

    def best_domain(indices: np.ndarray, mosaicity: float) -> int:
        values = likelihood(DOMAIN_SIZES_A[indices], np.full(len(indices), mosaicity))
        return int(indices[np.argmax(values)])

    i = best_domain(np.arange(1, len(DOMAIN_SIZES_A), 3), START_MOSAICITY_DEG)
    i = best_domain(neighbours(i, 2), START_MOSAICITY_DEG)
    values = likelihood(np.full(len(MOSAICITIES_DEG), DOMAIN_SIZES_A[i]), MOSAICITIES_DEG)
    mosaicity = float(MOSAICITIES_DEG[np.argmax(values)])
    i = best_domain(neighbours(i, 1), mosaicity)
    return float(DOMAIN_SIZES_A[i]), mosaicity
