"""The per-image estimators of integration's model and their pooling toward the run's, on
candidates and spots drawn from known models (the end-to-end check on simulated images is
tests/kernels/stages/test_robustness.py)."""

from __future__ import annotations

import numpy as np

from kernels.stages.estimation import (
    PartialityLikelihood,
    estimate_partiality_model,
    measure_spot_sigma,
    width2,
)
from kernels.stages.pooling import POOL_AFTER, ModelPool

BANDWIDTH, WAVELENGTH = 2.5e-3, 1.3


def candidates(rng, domain: float, mosaicity: float, rate: float, n: int = 2500):
    """Lattice points near the sphere and whether each was found, P(found) = exp(-a / p), a
    growing with resolution as a Wilson fall-off does."""
    s2 = rng.uniform(0.02, 0.27, n)
    eps = rng.uniform(-0.008, 0.008, n)
    p = np.exp(-0.5 * eps**2 / width2(s2, domain, mosaicity, BANDWIDTH, WAVELENGTH))
    found = rng.random(n) < np.exp(-rate * (1 + 3 * s2 / 0.27) / np.maximum(p, 1e-300))
    return PartialityLikelihood(eps, s2, found, BANDWIDTH, WAVELENGTH)


def test_partiality_model_recovers_the_domain_size():
    rng = np.random.default_rng(1)
    # at 5000 A the domain term is below the bandwidth's: known to a factor of ~2 per image
    for domain, factor in ((500.0, 1.3), (1500.0, 1.3), (5000.0, 2.0)):
        estimated = [
            estimate_partiality_model(candidates(rng, domain, 0.05, 0.05))[0] for _ in range(9)
        ]
        assert 1 / factor < np.median(estimated) / domain < factor, (domain, estimated)


def pooled_and_own(rng, domains, rate: float, evidence: float = 6.0):
    pool = ModelPool(evidence)
    own, pooled = [], []
    for domain in domains:
        likelihood = candidates(rng, domain, 0.05, rate)
        own.append(estimate_partiality_model(likelihood))
        pooled.append(pool.choose(own[-1], likelihood))
    return np.array(own)[POOL_AFTER:, 0], np.array(pooled)[POOL_AFTER:, 0]


def test_pooling_steadies_alike_weak_crystals_and_keeps_different_ones():
    rng = np.random.default_rng(2)
    # alike crystals, weak spots (~40 found per image): each image's own estimate is noisy
    own, pooled = pooled_and_own(rng, np.full(50, 5000.0), rate=0.5)
    assert np.std(np.log(pooled)) < 0.5 * np.std(np.log(own))
    assert 0.7 < np.median(pooled) / 5000 < 1.4
    # domain sizes spread over a decade, strong spots: the images keep their own
    domains = np.exp(rng.uniform(np.log(500), np.log(5000), 50))
    own, pooled = pooled_and_own(rng, domains, rate=0.05)
    truth = domains[POOL_AFTER:]
    own_error = np.median(np.abs(np.log(own / truth)))
    assert np.median(np.abs(np.log(pooled / truth))) < 1.2 * own_error + 0.05
    # no pooling asked: every image its own
    own, pooled = pooled_and_own(rng, np.full(20, 5000.0), rate=0.5, evidence=0.0)
    assert np.array_equal(own, pooled)


def test_spot_sigma_from_flux_ratio():
    rng = np.random.default_rng(3)
    # 36 spots 25 px apart (none in another's 6 px disc), anywhere within their pixel
    grid = 30.0 + 25.0 * np.arange(6)
    col, row = (a.ravel() + rng.uniform(-0.5, 0.5, 36) for a in np.meshgrid(grid, grid))
    yy, xx = np.mgrid[:200, :200]
    for sigma in (0.7, 1.2, 2.0):
        image = rng.poisson(2.0, (200, 200)).astype(float)
        for c, r in zip(col, row):
            image += (
                400
                * np.exp(-0.5 * ((xx - c) ** 2 + (yy - r) ** 2) / sigma**2)
                / (2 * np.pi * sigma**2)
            )
        measured = measure_spot_sigma(image, col, row, np.full(36, 2.0))
        assert abs(measured / sigma - 1) < 0.05, (sigma, measured)
