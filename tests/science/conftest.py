"""Simulated experiments with ground truth, processed once per session by the real chain."""

from __future__ import annotations

import dataclasses

import pytest

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.pipeline import ProcessingParams
from kernels.process import process_run


def simulate_and_process(root, images: int, seed: int, space_group: str, hit_rate: float):
    exp = root / "exp"
    params = dataclasses.replace(
        SimulationParams(), hit_rate=hit_rate, space_group=space_group, chunk_size=100
    )
    simulate_experiment(
        exp, runs=1, images=images, seed=seed, params=params, workers=1, log=lambda *_: None
    )
    out = root / "results"
    processing = ProcessingParams.from_dict({"crystal": {"space_group": space_group}})
    summary = process_run(exp / "runs" / "r0001", out, params=processing, trial="t1")
    return exp, out, summary


@pytest.fixture(scope="session")
def lysozyme(tmp_path_factory):
    """P 43 21 2 (no indexing ambiguity): 200 images, half of them hits, processed."""
    return simulate_and_process(tmp_path_factory.mktemp("lysozyme"), 200, 21, "P 43 21 2", 0.5)


@pytest.fixture(scope="session")
def p43(tmp_path_factory):
    """P 43 (indexing ambiguity k, h, -l): 300 images, 60 % hits, processed."""
    return simulate_and_process(tmp_path_factory.mktemp("p43"), 300, 5, "P 43", 0.6)
