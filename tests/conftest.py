"""Fixtures shared by every room's tests."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration once, at first import: give the test session its own home
# (SQLite metadata, no examples) before any test module imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sfxflow-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault(
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
)
_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_REPO / "dags"))
# dag.test() runs only DAGs of a bundle: the project's DAGs plus the tests' own fixture DAGs
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": name,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(path)},
            }
            for name, path in (
                ("dags-folder", _REPO / "dags"),
                ("test-dags", _REPO / "tests" / "operators" / "dags"),
            )
        ]
    ),
)

from facility.beamline.simulate import SimulationParams, simulate_experiment  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow metadata DB, migrated (for dag.test() and the CLI)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ,
    )
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def sim_experiment(tmp_path_factory):
    """One simulated experiment folder with run r0001: 240 events in 3 chunks (default physics)."""
    out = tmp_path_factory.mktemp("experiment")
    params = dataclasses.replace(SimulationParams(), chunk_size=80)
    simulate_experiment(out, runs=1, images=240, seed=11, params=params, log=lambda *_: None)
    return out


PUMP_PROBE = dataclasses.replace(
    SimulationParams(), hit_rate=1.0, chunk_size=20, light_moved_atoms=100
)


@pytest.fixture(scope="session")
def pump_probe_experiment(tmp_path_factory):
    """A pump-probe experiment: run r0001 of 40 events in 2 chunks, every shot a hit, half of
    them laser-on (tags laser_on, delay_ns in the chunk files)."""
    out = tmp_path_factory.mktemp("pump_probe") / "exp"
    simulate_experiment(out, 1, 40, seed=4, params=PUMP_PROBE, workers=1, log=lambda *_: None)
    return out
