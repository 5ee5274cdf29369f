"""Fixtures shared by every room's tests."""
from __future__ import annotations

import dataclasses

import pytest

from facility.beamline.simulate import SimulationParams, simulate_experiment


@pytest.fixture(scope="session")
def sim_experiment(tmp_path_factory):
    """One simulated experiment folder with run r0001: 240 events in 3 chunks (default physics)."""
    out = tmp_path_factory.mktemp("experiment")
    params = dataclasses.replace(SimulationParams(), chunk_size=80)
    simulate_experiment(out, runs=1, images=240, seed=11, params=params, log=lambda *_: None)
    return out
