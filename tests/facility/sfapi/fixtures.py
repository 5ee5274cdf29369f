"""Fixtures of the SF API tests: emulators on free ports (local and Slurm backends), a local Slurm
cluster, clients. Imported by the conftests of tests/sfapi_client and tests/facility/sfapi."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sfapi_client
from facility import slurm
from facility.ports import free_port
from facility.sfapi.testing import running_emulator

FAST_BACKOFF = (0.05, 2.0, 0.4)
DRIVER = Path(__file__).with_name("official_driver.py")
OFFICIAL_SFAPI = Path(sys.executable).parent.parent / "official-sfapi-client"
USERS = {"alice": ["/global/homes/alice", "/pscratch/alice"], "bob": ["/global/homes/bob"]}


def make_client(emu, user: str = "alice", **kwargs) -> sfapi_client.Client:
    """Our client for ``user`` of ``emu``, with backoff short enough for tests."""
    kwargs.setdefault("backoff", FAST_BACKOFF)
    kwargs.setdefault("timeout", 10)
    return sfapi_client.Client(
        emu.base_url, credentials_file=emu.all_credentials[user].credentials_file, **kwargs
    )


@pytest.fixture(scope="session")
def local_emulator(tmp_path_factory):
    """One local-backend emulator (subprocess) shared by the session: users alice and bob."""
    with running_emulator(
        tmp_path_factory.mktemp("sfapi-local"),
        "local",
        users=USERS,
        kill_wait=1.0,
        max_upload_bytes=1024 * 1024,
    ) as emu:
        yield emu


@pytest.fixture
def emu(local_emulator):
    """The shared local emulator, with faults and outages cleared after each test."""
    yield local_emulator
    local_emulator.admin.clear_faults()
    local_emulator.admin.clear_outages()
    for system in ("perlmutter", "dtns", "dtn01"):
        local_emulator.admin.set_status(system, "active")


@pytest.fixture
def client_for():
    """``client_for(emu, user="alice", **kwargs)``: build one of our clients (close it yourself)."""
    return make_client


@pytest.fixture
def alice(emu):
    with make_client(emu, "alice") as client:
        yield client


@pytest.fixture
def bob(emu):
    with make_client(emu, "bob") as client:
        yield client


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A one-node Slurm cluster (munged, slurmctld, slurmd) on 127.0.0.1, stopped at the end."""
    if not shutil.which("slurmctld"):
        pytest.skip("slurm-wlm is not installed (make sysdeps)")
    cluster = slurm.SlurmCluster(tmp_path_factory.mktemp("slurm"), free_port(), free_port())
    try:
        yield slurm.up(cluster)
    finally:
        slurm.down(cluster)


@pytest.fixture(scope="session")
def slurm_emulator(tmp_path_factory, slurm_cluster):
    """An emulator whose jobs go to the real Slurm cluster."""
    with running_emulator(
        tmp_path_factory.mktemp("sfapi-slurm"),
        "slurm",
        users=USERS,
        slurm_var_dir=slurm_cluster.var_dir,
    ) as emu:
        yield emu


@pytest.fixture
def run_official():
    """``run_official(emu, scenario) -> dict``: run official_driver.py as the emulator's first user.

    The official package shares its import name with this project's ``sfapi_client``, so the
    Makefile installs it apart in ``.venv/official-sfapi-client``; the driver runs in a
    ``python -P`` child with only that directory added to its path.
    """
    env = {**os.environ, "PYTHONPATH": str(OFFICIAL_SFAPI)}

    def run(emu, scenario: str) -> dict:
        proc = subprocess.run(
            [
                sys.executable,
                "-P",
                str(DRIVER),
                emu.base_url,
                emu.credentials.token_url,
                str(emu.credentials.credentials_file),
                scenario,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    return run
