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
beam's and is not refitted: one image cannot separate an |s|^2 term from an |s| term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DOMAIN_SIZES_A = np.geomspace(250.0, 40000.0, 20)
MOSAICITIES_DEG = np.array([0.0, 0.02, 0.05, 0.1, 0.2, 0.4])
START_MOSAICITY_DEG = 0.05
RESOLUTION_BINS = 3
INNER_PX, OUTER_PX = 2, 6


@dataclass(frozen=True)
class ImageModel:
    """Per-image quantities integration uses: spot width and the partiality model's widths."""

    spot_sigma_px: float
    domain_size_a: float
    mosaicity_deg: float


SIGMA_GRID = np.geomspace(0.3, 4.0, 60)


def measure_spot_sigma(photons: np.ndarray, col, row, background, strongest: int = 40) -> float:
    """Width (px) of the spots centred at (col, row) from their inner/outer flux ratio.

    The ratio expected for each trial width is computed on the same pixels (a Gaussian sampled
    at the spots' sub-pixel positions), so pixelation does not bias the answer. NaN if no spot
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
    g = np.exp(-0.5 * dist2[None] / SIGMA_GRID[:, None, None] ** 2)
    g /= (g * outer_mask).sum(axis=2, keepdims=True)
    expected = (g * inner_mask).sum(axis=2) @ flux[keep] / flux[keep].sum()
    # expected falls with sigma: interpolate on the reversed (increasing) arrays
    return float(np.interp(observed, expected[::-1], SIGMA_GRID[::-1]))


def width2(s2: np.ndarray, domain_a, mosaicity_deg, bandwidth: float, wavelength: float):
    """Squared Gaussian width of the excitation error (1/A^2); broadcasts over model grids."""
    return (
        (1.0 / np.asarray(domain_a)) ** 2
        + np.radians(mosaicity_deg) ** 2 * s2
        + (bandwidth * wavelength / 2.0) ** 2 * s2 * s2
    )


def best_detection_rate(e: np.ndarray, found: np.ndarray, steps: int = 5) -> np.ndarray:
    """Per row of `e` (= 1 / partiality, (m, n)), the maximised log-likelihood over a of
    P(found) = exp(-a e) (Newton on log a; the likelihood is concave in a)."""
    n_found = found.sum()
    log_a = np.full(e.shape[0], np.log(max(n_found, 1) / max(len(found), 1)))
    for _ in range(steps):
        a = np.exp(log_a)[:, None]
        x = np.clip(a * e, 1e-9, 50.0)
        q = np.exp(-x) / -np.expm1(-x)  # P / (1 - P)
        # d/d(log a) of sum(-found * a e + (1 - found) * log(1 - P)): found -x, others x q
        grad = np.where(found, -x, x * q).sum(axis=1)
        hess = np.where(found, -x, x * q * (1 - x * (1 + q))).sum(axis=1)
        log_a = log_a - grad / np.minimum(hess, -1e-9)
        log_a = np.clip(log_a, -12.0, 6.0)
    x = np.clip(np.exp(log_a)[:, None] * e, 1e-9, 50.0)
    return np.where(found, -x, np.log(-np.expm1(-x))).sum(axis=1)


def estimate_partiality_model(
    eps: np.ndarray, s2: np.ndarray, found: np.ndarray, bandwidth: float, wavelength: float
) -> tuple[float, float]:
    """Domain size (A) and mosaicity (deg) best explaining which candidates were found.

    eps, s2 : excitation error and |s|^2 of every candidate lattice point; found : bool, seen
    as an indexed spot. Searched one parameter at a time on its grid (domain size, mosaicity,
    domain size again), which costs a fraction of the full grid and finds the same optimum on
    this smooth likelihood.
    """
    edges = np.quantile(s2, np.linspace(0, 1, RESOLUTION_BINS + 1)[1:-1])
    bins = np.searchsorted(edges, s2)
    parts = [(s2[bins == b], eps[bins == b], found[bins == b]) for b in range(RESOLUTION_BINS)]

    def likelihood(domain: np.ndarray, mosaicity: np.ndarray) -> np.ndarray:
        total = np.zeros(len(domain))
        for s2_b, eps_b, found_b in parts:
            w2 = width2(s2_b[None, :], domain[:, None], mosaicity[:, None], bandwidth, wavelength)
            e = np.exp(np.minimum(0.5 * eps_b**2 / w2, 40.0))
            total += best_detection_rate(e, found_b)
        return total

    def best(domains: np.ndarray, mosaics: np.ndarray) -> tuple[float, float]:
        i = int(np.argmax(likelihood(domains, mosaics)))
        return float(domains[i]), float(mosaics[i])

    n_d, n_m = len(DOMAIN_SIZES_A), len(MOSAICITIES_DEG)
    domain, _ = best(DOMAIN_SIZES_A, np.full(n_d, START_MOSAICITY_DEG))
    _, mosaicity = best(np.full(n_m, domain), MOSAICITIES_DEG)
    return best(DOMAIN_SIZES_A, np.full(n_d, mosaicity))
