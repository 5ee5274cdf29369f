"""Batch jobs as the client sees them, and the idempotency key carried in a job's comment."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field

#: States after which a job never changes again. Includes NODE_FAIL, BOOT_FAIL and DEADLINE,
#: which the official client does not treat as final (it would wait on them forever).
TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)
KEY_PREFIX = "sfxflow-key:"
MAX_KEY_LENGTH = 100
_KEY_RE = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Job:
    """A job's latest known record.

    Attributes
    ----------
    machine, jobid, state : str
        ``state`` is the full Slurm state name (``CANCELLED by 0`` is reported as ``CANCELLED``).
    name, comment, exit_code : str
    key : str or None
        The idempotency key of the submission as stored (:func:`stored_key`), if it carried one.
    row : dict
        The squeue or sacct row as the API returned it.
    """

    machine: str
    jobid: str
    state: str = "PENDING"
    name: str = ""
    comment: str = ""
    exit_code: str = ""
    row: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> str | None:
        return self.comment[len(KEY_PREFIX) :] if self.comment.startswith(KEY_PREFIX) else None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETED"


def job_from_row(machine: str, row: dict) -> Job:
    """A :class:`Job` from one squeue or sacct row of ``GET /compute/jobs/{machine}``."""
    state = (row.get("state") or "").split(" ")[0].rstrip("+")
    return Job(
        machine=machine,
        jobid=str(row.get("jobid")),
        state=state,
        name=row.get("name") or row.get("jobname") or "",
        comment=row.get("comment") or "",
        exit_code=row.get("exitcode", ""),
        row=row,
    )


def stored_key(key: str) -> str:
    """The form of idempotency ``key`` written into a job's comment and looked up again.

    Keys up to ``MAX_KEY_LENGTH`` characters are kept; longer ones (names of 64 characters each
    add up) become their first 80 characters, ``-`` and 16 hex digits of the full key's SHA-256:
    deterministic, so the same key always finds its job, and distinct keys stay distinct.

    Raises
    ------
    ValueError
        ``key`` is empty or has characters outside ``[A-Za-z0-9._-]``.
    """
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"invalid idempotency key {key!r}: use only [A-Za-z0-9._-]")
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{key[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def new_key() -> str:
    """A fresh idempotency key."""
    return uuid.uuid4().hex


def tag_script(script: str, key: str) -> str:
    """``script`` with ``#SBATCH --comment=sfxflow-key:<key>`` as its last directive.

    A key longer than ``MAX_KEY_LENGTH`` is written in its :func:`stored_key` form.

    The directive goes after the script's own ``#SBATCH`` lines (the last one wins) and before
    the first command (sbatch stops reading directives there).

    Raises
    ------
    ValueError
        ``key`` has characters outside ``[A-Za-z0-9._-]``, or the script has no ``#!`` line.
    """
    key = stored_key(key)
    lines = script.splitlines(keepends=True)
    if not lines or not lines[0].startswith("#!"):
        raise ValueError("a batch script must start with a #! line")
    at = 1
    while at < len(lines) and (not lines[at].strip() or lines[at].lstrip().startswith("#")):
        at += 1
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.insert(at, f"#SBATCH --comment={KEY_PREFIX}{key}\n")
    return "".join(lines)
