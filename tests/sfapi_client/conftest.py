"""The client's tests use the SF API fixtures of tests/facility/sfapi/fixtures.py."""

from tests.facility.sfapi.fixtures import alice, bob, client_for, emu, local_emulator  # noqa: F401
