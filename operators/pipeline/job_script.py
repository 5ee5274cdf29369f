"""Batch scripts for the HPC center, built from a fixed template.

Every value that comes from a run, a trial or a user is shell-quoted; names that end up in paths
must match NAME_PATTERN. No secret goes into a script: the results DB URL carries no password (the
kernels read it from a 0600 file on the HPC side).
"""

from __future__ import annotations

import re
import shlex

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

TEMPLATE = """#!/bin/bash
#SBATCH --job-name={job_name}
#SBATCH --ntasks={ntasks}
#SBATCH --time={time_limit}
#SBATCH --signal=TERM@60
#SBATCH --output=slurm-%j.out
#SBATCH --chdir={workdir}
set -euo pipefail
{env}{files}{commands}
"""
HEREDOC_END = "SFXFLOW_EOF"


def check_name(kind: str, value: str) -> str:
    """`value` if it is a safe run/trial/experiment name, else ValueError naming it."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"invalid {kind} name {value!r}: use letters, digits, '.', '_' or '-' "
            f"(at most 64, starting with a letter or digit)"
        )
    return value


def batch_script(
    job_name: str,
    workdir: str,
    commands: list[list[str]],
    ntasks: int = 1,
    time_limit: str = "00:30:00",
    files: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """A Slurm batch script running `commands` (argument lists) one after the other in `workdir`.

    `files` (name -> one-line text, e.g. JSON parameters) are written into `workdir` first, from
    quoted here-documents, so the job is self-contained. `env` is exported first (site settings
    such as which network the MPI library may use; never a secret).
    """
    check_name("job", job_name)
    if not isinstance(ntasks, int) or ntasks < 1:
        raise ValueError(f"ntasks must be a positive integer, got {ntasks!r}")
    if not re.fullmatch(r"\d{1,3}:\d{2}:\d{2}", time_limit):
        raise ValueError(f"time limit must be HH:MM:SS, got {time_limit!r}")
    if any(c in workdir for c in "\n\r\0 ") or not workdir.startswith("/"):
        raise ValueError(f"workdir must be an absolute path without spaces, got {workdir!r}")
    exports = ""
    for name, value in (env or {}).items():
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
            raise ValueError(f"invalid environment variable name {name!r}")
        exports += f"export {name}={shlex.quote(str(value))}\n"
    embedded = ""
    for name, text in (files or {}).items():
        check_name("file", name)
        if "\n" in text:
            raise ValueError(f"embedded file {name} must be a single line")
        embedded += f"cat > {name} <<'{HEREDOC_END}'\n{text}\n{HEREDOC_END}\n"
    lines = "\n".join(shlex.join(str(a) for a in cmd) for cmd in commands)
    return TEMPLATE.format(
        job_name=job_name,
        ntasks=ntasks,
        time_limit=time_limit,
        workdir=workdir,
        env=exports,
        files=embedded,
        commands=lines,
    )
