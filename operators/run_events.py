"""The run-concluded marker: the contract between the beamline DAQ and the pipeline.

A run lives in ``<exp>/runs/<run_name>/``. The DAQ writes and closes every file of the run and
only then atomically writes ``CONCLUDED.json``::

    {"run": 1, "run_name": "r0001",
     "files": [{"name": "r0001-c00.h5", "bytes": 123, "adler32": "0a1b2c3d"}, ...],
     "concluded_at": "2026-11-25T09:50:00+00:00"}

A run folder without the marker is in progress and is never touched. Sites with a message bus
publish the same marker to a Redis stream, one field per key (see :func:`marker_to_stream_fields`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from kernels.runformat import MARKER
from operators.pipeline.job_script import RUN_NAME

MARKER_NAME = MARKER
RUNS_FOLDER = "runs"

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ADLER32 = re.compile(r"^[0-9a-f]{8}$")


class MarkerError(ValueError):
    """A run-concluded marker is malformed; the message names the marker and the bad field."""


def validate_marker(marker: dict, origin: str) -> dict:
    """Check a marker against the contract and return it normalised.

    Parameters
    ----------
    marker : dict
        Decoded marker.
    origin : str
        Where it came from (a path or stream id), used in error messages.

    Returns
    -------
    dict
        ``{"run", "run_name", "files", "concluded_at"}`` with ``files`` a list of
        ``{"name", "bytes", "adler32"}``.

    Raises
    ------
    MarkerError
        If a key is missing or a value breaks the contract. File names must be plain names
        (no folders), so a marker can never point outside its run folder.
    """
    if not isinstance(marker, dict):
        raise MarkerError(f"{origin}: marker must be a JSON object, got {type(marker).__name__}")
    missing = {"run", "run_name", "files", "concluded_at"} - marker.keys()
    if missing:
        raise MarkerError(f"{origin}: marker lacks {sorted(missing)}")
    run, run_name = marker["run"], marker["run_name"]
    if not isinstance(run, int) or isinstance(run, bool) or run < 0:
        raise MarkerError(f"{origin}: 'run' must be a non-negative integer, got {run!r}")
    if not isinstance(run_name, str) or not RUN_NAME.match(run_name):
        raise MarkerError(f"{origin}: 'run_name' must look like r0001, got {run_name!r}")
    if not isinstance(marker["files"], list) or not marker["files"]:
        raise MarkerError(f"{origin}: 'files' must be a non-empty list")
    files = [validate_file_entry(entry, origin) for entry in marker["files"]]
    names = [entry["name"] for entry in files]
    if len(set(names)) != len(names):
        raise MarkerError(f"{origin}: 'files' lists a name twice")
    return {
        "run": run,
        "run_name": run_name,
        "files": files,
        "concluded_at": str(marker["concluded_at"]),
    }


def validate_file_entry(entry: dict, origin: str) -> dict:
    """Check one ``files`` entry of a marker; see :func:`validate_marker`."""
    if not isinstance(entry, dict) or {"name", "bytes", "adler32"} - entry.keys():
        raise MarkerError(f"{origin}: each file needs name, bytes, adler32; got {entry!r}")
    name, size, checksum = entry["name"], entry["bytes"], entry["adler32"]
    if not isinstance(name, str) or not _FILE_NAME.match(name) or name == MARKER_NAME:
        raise MarkerError(f"{origin}: bad file name {name!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MarkerError(f"{origin}: file {name}: 'bytes' must be a non-negative integer")
    if not isinstance(checksum, str) or not _ADLER32.match(checksum):
        raise MarkerError(f"{origin}: file {name}: 'adler32' must be 8 lowercase hex digits")
    return {"name": name, "bytes": size, "adler32": checksum}


def read_marker(run_dir: str | os.PathLike) -> dict:
    """Read and validate ``<run_dir>/CONCLUDED.json``."""
    path = Path(run_dir) / MARKER_NAME
    try:
        marker = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise MarkerError(f"{path}: not valid JSON ({error})") from error
    return validate_marker(marker, str(path))


def marker_to_stream_fields(marker: dict) -> dict[str, str]:
    """Redis stream fields for a marker: one field per key, ``files`` as JSON text."""
    return {
        "run": str(marker["run"]),
        "run_name": marker["run_name"],
        "files": json.dumps(marker["files"]),
        "concluded_at": marker["concluded_at"],
    }


def marker_from_stream_fields(fields: dict, origin: str) -> dict:
    """Inverse of :func:`marker_to_stream_fields`, validated; raises :class:`MarkerError`."""
    fields = {_text(key): _text(value) for key, value in fields.items()}
    try:
        marker = dict(fields, run=int(fields["run"]), files=json.loads(fields["files"]))
    except (KeyError, ValueError) as error:
        raise MarkerError(f"{origin}: bad stream message ({error!r})") from error
    return validate_marker(marker, origin)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
