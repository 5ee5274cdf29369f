"""A local emulator of the NERSC Superfacility API v1.2 (the HPC center's REST API).

Run it with ``python -m facility.sfapi serve``; start it from tests with
:func:`facility.sfapi.testing.running_emulator`.
"""
