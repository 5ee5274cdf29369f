"""A real SF API emulator and an Airflow connection to it, for operator tests with dag.test()."""

from __future__ import annotations

import json

import pytest

from facility.sfapi.testing import running_emulator
from sfapi_client import Client


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("center"), backend="local", kill_wait=1.0) as emu:
        yield emu


@pytest.fixture
def sfapi_conn(emulator, monkeypatch, airflow_db):
    """``sfapi_default`` pointing at the emulator, credentials from the 0600 file."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SFAPI_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": emulator.base_url,
                "extra": {"credentials_file": str(emulator.credentials.credentials_file)},
            }
        ),
    )
    emulator.admin.clear_outages()
    emulator.admin.clear_faults()
    emulator.admin.set_status("perlmutter", "active")
    return emulator


@pytest.fixture
def client(emulator):
    with Client(emulator.base_url, credentials_file=emulator.credentials.credentials_file) as c:
        yield c
