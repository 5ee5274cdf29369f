"""Checkpoints of a run's processing: which work items are finished, and where their results are.

A checkpoint is one JSON file written atomically (temporary file, fsync, rename:
:data:`~kernels.io.atomic.Durability.FILE`) with a
SHA-256 over its canonical body, so a torn or edited file is detected instead of trusted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from kernels.io.atomic import Durability, write_bytes

FORMAT = "sfxflow-checkpoint-1"


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted (corrupt, truncated, or for another run/trial)."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"checkpoint {self.path}: {problem}")


@dataclass
class Checkpoint:
    """Progress of one run processed with one trial.

    Attributes
    ----------
    run, trial, params_sha256 : str
        What was processed; a checkpoint for anything else is refused.
    n_events : int
        Work items in the run.
    done : set of (chunk, event)
        Finished items whose results are in ``parts``.
    parts : list of str
        Result files (relative to the output directory) written by earlier sessions.
    logged : bool
        True when every row of ``done`` is committed to the results DB.
    sessions : int
        Sessions (submissions) that contributed.
    """

    run: str
    trial: str
    params_sha256: str
    n_events: int
    done: set = field(default_factory=set)
    parts: list = field(default_factory=list)
    logged: bool = True
    sessions: int = 0

    def body(self) -> dict:
        return {
            "format": FORMAT,
            "run": self.run,
            "trial": self.trial,
            "params_sha256": self.params_sha256,
            "n_events": self.n_events,
            "done": sorted([int(c), int(e)] for c, e in self.done),
            "parts": list(self.parts),
            "logged": self.logged,
            "sessions": self.sessions,
        }


def _digest(body: dict) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def write_checkpoint(path, checkpoint: Checkpoint) -> None:
    """Write atomically: readers see the old checkpoint or the new one, never a mix."""
    body = checkpoint.body()
    document = json.dumps({"sha256": _digest(body), "body": body})
    write_bytes(path, document.encode("utf-8"), Durability.FILE)


def read_checkpoint(path, run: str, trial: str, params_sha256: str) -> Checkpoint | None:
    """The checkpoint at ``path``, or None if there is none.

    Raises
    ------
    CheckpointError
        Unreadable, checksum mismatch, unknown format, or written for another run, trial
        or parameter set.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        wrapper = json.loads(path.read_text(encoding="utf-8"))
        body, digest = wrapper["body"], wrapper["sha256"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    if _digest(body) != digest:
        raise CheckpointError(path, "checksum mismatch: the file is corrupt")
    if body.get("format") != FORMAT:
        raise CheckpointError(path, f"unknown format {body.get('format')!r}")
    expected = {"run": run, "trial": trial, "params_sha256": params_sha256}
    for key, value in expected.items():
        if body[key] != value:
            raise CheckpointError(path, f"written for {key} {body[key]!r}, not {value!r}")
    return Checkpoint(
        run=body["run"],
        trial=body["trial"],
        params_sha256=body["params_sha256"],
        n_events=int(body["n_events"]),
        done={(int(c), int(e)) for c, e in body["done"]},
        parts=list(body["parts"]),
        logged=bool(body["logged"]),
        sessions=int(body["sessions"]),
    )
