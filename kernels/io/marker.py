"""The run-concluded marker: the contract between the beamline DAQ and the pipeline.

A run lives in ``<exp>/runs/<run_name>/``. The DAQ writes and closes every file of the run and
only then atomically writes ``CONCLUDED.json``::

    {"run": 1, "run_name": "r0001",
     "files": [{"name": "r0001-c00.h5", "bytes": 123, "adler32": "0a1b2c3d"}, ...],
     "concluded_at": "2026-11-25T09:50:00+00:00"}

A run folder without the marker is in progress and is never touched. Sites with a message bus
publish the same marker to a Redis stream, one field per key (:meth:`RunMarker.to_stream_fields`);
XCom and trigger events carry it as the plain dict of :meth:`RunMarker.to_dict`.

Run names (``r0001``), their order and chunk file names live here too. Standard library only:
the event trigger and every parse of the event DAG import this module, never h5py or numpy.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernels.io.atomic import write_json

MARKER = "CONCLUDED.json"
RUNS_FOLDER = "runs"
RUN_NAME = re.compile(r"^r\d{4,}$")  # r0001 ... r9999, r10000, ...
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ADLER32 = re.compile(r"^[0-9a-f]{8}$")
_KEYS = ("run", "run_name", "files", "concluded_at")


class MarkerError(ValueError):
    """A run-concluded marker is missing or malformed; the message names it and the bad field.

    Attributes
    ----------
    origin : str
        The marker file or stream message.
    problem : str
        What is wrong with it.
    """

    def __init__(self, origin: str | os.PathLike, problem: str):
        self.origin, self.problem = str(origin), problem
        super().__init__(f"{self.origin}: {problem}")


def run_name(run_number: int) -> str:
    """The folder name of run ``run_number``: ``r0001``."""
    return f"r{run_number:04d}"


def run_order(name: str) -> tuple[int, str]:
    """Sort key of a run name: length, then text, which is run order for ``r{n:04d}`` names
    (``r9999`` before ``r10000``, unlike the text alone) and never fails on another folder name."""
    return len(name), name


def chunk_name(name: str, chunk: int) -> str:
    """The file name of chunk ``chunk`` of run ``name``: ``r0001-c00.h5``."""
    return f"{name}-c{chunk:02d}.h5"


def adler32_hex(value: int) -> str:
    """An Adler-32 value as 8 lowercase hex digits (the format of ``xrdadler32``)."""
    return f"{value & 0xFFFFFFFF:08x}"


def adler32_file(path, blocksize: int = 8 << 20) -> str:
    """Adler-32 of a file as 8 lowercase hex digits."""
    value = 1
    with open(path, "rb") as f:
        while block := f.read(blocksize):
            value = zlib.adler32(block, value)
    return adler32_hex(value)


@dataclass(frozen=True)
class MarkerFile:
    """One file of a concluded run: plain name (no folders), size and Adler-32."""

    name: str
    bytes: int
    adler32: str

    @classmethod
    def from_dict(cls, entry: Any, origin: str) -> MarkerFile:
        """Check one ``files`` entry; :class:`MarkerError` names ``origin`` and the bad field.

        File names must be plain names, so a marker can never point outside its run folder.
        """
        if not isinstance(entry, dict) or {"name", "bytes", "adler32"} - entry.keys():
            raise MarkerError(origin, f"each file needs name, bytes, adler32; got {entry!r}")
        name, size, checksum = entry["name"], entry["bytes"], entry["adler32"]
        if not isinstance(name, str) or not _FILE_NAME.match(name) or name == MARKER:
            raise MarkerError(origin, f"bad file name {name!r}")
        if not is_count(size):
            raise MarkerError(origin, f"file {name}: 'bytes' must be a non-negative integer")
        if not isinstance(checksum, str) or not _ADLER32.match(checksum):
            raise MarkerError(origin, f"file {name}: 'adler32' must be 8 lowercase hex digits")
        return cls(name, size, checksum)

    def to_dict(self) -> dict:
        return {"name": self.name, "bytes": self.bytes, "adler32": self.adler32}


@dataclass(frozen=True)
class RunMarker:
    """A validated run-concluded marker (build it with :meth:`from_dict` or :func:`read_marker`)."""

    run: int
    run_name: str
    files: tuple[MarkerFile, ...]
    concluded_at: str

    @classmethod
    def from_dict(cls, marker: Any, origin: str) -> RunMarker:
        """The one validator of the marker contract.

        Parameters
        ----------
        marker : dict
            Decoded marker.
        origin : str
            Where it came from (a path or stream id), used in error messages.

        Raises
        ------
        MarkerError
            If a key is missing or a value breaks the contract.
        """
        if not isinstance(marker, dict):
            raise MarkerError(origin, f"marker must be a JSON object, got {type(marker).__name__}")
        missing = set(_KEYS) - marker.keys()
        if missing:
            raise MarkerError(origin, f"marker lacks {sorted(missing)}")
        run = marker["run"]
        if not is_count(run):
            raise MarkerError(origin, f"'run' must be a non-negative integer, got {run!r}")
        return cls(
            run,
            check_run_name(marker["run_name"], origin),
            check_files(marker["files"], origin),
            str(marker["concluded_at"]),
        )

    def to_dict(self) -> dict:
        """The marker as JSON-ready dict (the file, XCom and trigger-event format)."""
        return {
            "run": self.run,
            "run_name": self.run_name,
            "files": [f.to_dict() for f in self.files],
            "concluded_at": self.concluded_at,
        }

    def to_stream_fields(self) -> dict[str, str]:
        """Redis stream fields: one field per key, ``files`` as JSON text."""
        return {
            "run": str(self.run),
            "run_name": self.run_name,
            "files": json.dumps([f.to_dict() for f in self.files]),
            "concluded_at": self.concluded_at,
        }

    @classmethod
    def from_stream_fields(cls, fields: dict, origin: str) -> RunMarker:
        """Inverse of :meth:`to_stream_fields` (bytes or text), validated."""
        text = {_text(key): _text(value) for key, value in fields.items()}
        try:
            marker = dict(text, run=int(text["run"]), files=json.loads(text["files"]))
        except (KeyError, ValueError) as error:
            raise MarkerError(origin, f"bad stream message ({error!r})") from error
        return cls.from_dict(marker, origin)

    @classmethod
    def from_json(cls, text: str | bytes, origin: str) -> RunMarker:
        """Parse and validate the text of a marker file."""
        try:
            marker = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MarkerError(origin, f"not valid JSON ({error})") from error
        return cls.from_dict(marker, origin)


def check_run_name(name: Any, origin: str) -> str:
    """``name`` if it is a run name (``r0001``), else :class:`MarkerError` naming ``origin``."""
    if not isinstance(name, str) or not RUN_NAME.match(name):
        raise MarkerError(origin, f"'run_name' must look like r0001, got {name!r}")
    return name


def check_files(files: Any, origin: str) -> tuple[MarkerFile, ...]:
    """A marker's non-empty ``files`` list, each entry checked and no name twice."""
    if not isinstance(files, list) or not files:
        raise MarkerError(origin, "'files' must be a non-empty list")
    checked = tuple(MarkerFile.from_dict(entry, origin) for entry in files)
    names = [entry.name for entry in checked]
    if len(set(names)) != len(names):
        raise MarkerError(origin, "'files' lists a name twice")
    return checked


def validate_marker(marker: Any, origin: str) -> dict:
    """A marker dict checked by :meth:`RunMarker.from_dict` and returned normalised."""
    return RunMarker.from_dict(marker, origin).to_dict()


def read_marker(run_dir: str | os.PathLike) -> RunMarker:
    """Read and validate ``<run_dir>/CONCLUDED.json``.

    Raises
    ------
    MarkerError
        The run is not concluded (no marker) or its marker is unreadable or invalid.
    """
    path = Path(run_dir) / MARKER
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise MarkerError(path, "run not concluded (no marker)") from None
    except OSError as error:
        raise MarkerError(path, f"unreadable marker ({error})") from None
    return RunMarker.from_json(text, str(path))


def write_marker(run_dir, run_number: int, concluded_at: datetime | None = None) -> RunMarker:
    """Mark a run concluded (the DAQ's last act, once every file is closed); return the marker.

    Lists every file of the run folder (hidden files aside) with size and Adler-32, and appears
    atomically: written to a temporary name, then renamed.
    """
    run_dir = Path(run_dir)
    files = sorted(
        p
        for p in run_dir.iterdir()
        if p.is_file() and p.name != MARKER and not p.name.startswith(".")
    )
    marker = RunMarker(
        run=run_number,
        run_name=run_name(run_number),
        files=tuple(MarkerFile(p.name, p.stat().st_size, adler32_file(p)) for p in files),
        concluded_at=(concluded_at or datetime.now(UTC)).isoformat(),
    )
    write_json(run_dir / MARKER, marker.to_dict())
    return marker


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
