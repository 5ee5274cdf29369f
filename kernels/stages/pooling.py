"""Pooling each image's partiality model toward its run's.

One still says little about its crystal's domain size and mosaicity when its spots are weak;
the crystals of a run are often alike. So each image's own maximum-likelihood model is kept
only when its data prefer it clearly (by ``integration.pool_evidence`` in log-likelihood; 0,
the default, switches pooling off) over the run's model, the median of the models measured on
the run's earlier images. A run of alike crystals
then integrates nearly every image with the run's model; one whose domain sizes spread widely
keeps the images' own models where they differ. The pool is per Processor (per run and MPI
rank), so an image's model depends on the images that rank processed before it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from kernels.stages.estimation import PartialityLikelihood

POOL_AFTER = 10  # images measured before the run's model is offered
HISTORY = 200  # latest images the run's model is the median of


class ModelPool:
    """The partiality models measured on a run's images so far and the run's model."""

    def __init__(self, evidence: float) -> None:
        self.evidence = evidence  # log-likelihood the own model must gain; <= 0: no pooling
        self.log_domains: deque[float] = deque(maxlen=HISTORY)
        self.mosaicities: deque[float] = deque(maxlen=HISTORY)

    def run_model(self) -> tuple[float, float] | None:
        """Median domain size (geometric) and mosaicity of the images so far; None before
        ``POOL_AFTER`` images."""
        if len(self.log_domains) < POOL_AFTER:
            return None
        return float(np.exp(np.median(self.log_domains))), float(np.median(self.mosaicities))

    def choose(
        self, own: tuple[float, float], likelihood: PartialityLikelihood
    ) -> tuple[float, float]:
        """The image's model: its own (`own`, of highest `likelihood`) or the run's; `own` then
        joins the pool."""
        run = self.run_model()
        self.log_domains.append(float(np.log(own[0])))
        self.mosaicities.append(own[1])
        if run is None or self.evidence <= 0:
            return own
        l_own, l_run = likelihood(np.array([own[0], run[0]]), np.array([own[1], run[1]]))
        return run if l_own - l_run < self.evidence else own
