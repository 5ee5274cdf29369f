"""The run-concluded marker as the Airflow side carries it: plain dicts (XCom, trigger events).

The contract itself (fields, the one validator, run names, Adler-32, the Redis stream encoding)
lives in :mod:`kernels.io.marker`, standard library only; these are its dict-shaped faces.
"""

from __future__ import annotations

import os

from kernels.io.marker import MARKER, RUNS_FOLDER, MarkerError, RunMarker, validate_marker
from kernels.io.marker import read_marker as read_run_marker

MARKER_NAME = MARKER

__all__ = [
    "MARKER_NAME",
    "RUNS_FOLDER",
    "MarkerError",
    "marker_from_stream_fields",
    "marker_to_stream_fields",
    "read_marker",
    "validate_marker",
]


def read_marker(run_dir: str | os.PathLike) -> dict:
    """Read and validate ``<run_dir>/CONCLUDED.json``; the marker as a dict."""
    return read_run_marker(run_dir).to_dict()


def marker_to_stream_fields(marker: dict) -> dict[str, str]:
    """Redis stream fields for a marker dict: one field per key, ``files`` as JSON text."""
    return RunMarker.from_dict(marker, "marker").to_stream_fields()


def marker_from_stream_fields(fields: dict, origin: str) -> dict:
    """Inverse of :func:`marker_to_stream_fields`, validated; raises :class:`MarkerError`."""
    return RunMarker.from_stream_fields(fields, origin).to_dict()
