"""The SF API fixtures (tests/facility/sfapi/fixtures.py)."""

from tests.facility.sfapi.fixtures import (  # noqa: F401 — fixtures shared with the other SF API tests
    alice,
    bob,
    client_for,
    emu,
    local_emulator,
    run_official,
    slurm_cluster,
    slurm_emulator,
)
