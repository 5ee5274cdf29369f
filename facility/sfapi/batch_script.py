"""Parse the ``#SBATCH`` header of a batch script the way ``sbatch`` reads it.

Only the options the local backend acts on are kept; every other option is accepted and ignored,
as a site's sbatch would accept it. ``sbatch`` stops reading directives at the first line that is
neither a comment nor blank, and so does :func:`parse_batch_script`.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any

NOT_A_SCRIPT = (
    "This does not look like a batch script. The first line must start with #! "
    "followed by the path to an interpreter."
)


class BatchScriptError(ValueError):
    """The script cannot be submitted; the message says why, as sbatch would."""


@dataclass(frozen=True)
class BatchOptions:
    """The ``#SBATCH`` options a backend needs.

    Attributes
    ----------
    job_name, comment : str or None
    output, error : str or None
        File name patterns (``%j`` job id, ``%x`` job name, ``%u`` user).
    time_limit_s : int or None
        Wall-clock limit in seconds, ``None`` for unlimited.
    nodes, ntasks : int
    chdir : str or None
        Working directory as given (a facility path).
    signal_spec : tuple of (int, int) or None
        ``(signal number, seconds before the time limit)`` from ``--signal=[B:]SIG[@secs]``.
    """

    job_name: str | None = None
    comment: str | None = None
    output: str | None = None
    error: str | None = None
    time_limit_s: int | None = None
    nodes: int = 1
    ntasks: int = 1
    chdir: str | None = None
    signal_spec: tuple[int, int] | None = None


#: sbatch's long options: getopt_long takes any unambiguous prefix (``--outp`` is ``--output``).
SBATCH_LONG_OPTIONS = frozenset(
    """account acctg-freq array batch bb bbf begin chdir cluster-constraint clusters comment
    constraint container contiguous core-spec cores-per-socket cpu-freq cpus-per-gpu
    cpus-per-task deadline delay-boot dependency distribution error exclude exclusive export
    export-file extra-node-info get-user-env gid gpu-bind gpu-freq gpus gpus-per-node
    gpus-per-socket gpus-per-task gres gres-flags help hint hold ignore-pbs input job-name
    kill-on-invalid-dep licenses mail-type mail-user mcs-label mem mem-bind mem-per-cpu
    mem-per-gpu mincpus network nice no-kill no-requeue nodefile nodelist nodes ntasks
    ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket open-mode output overcommit
    oversubscribe parsable partition power prefer priority profile propagate qos quiet reboot
    requeue reservation signal sockets-per-node spread-job switches test-only thread-spec
    threads-per-core time time-min tmp uid usage use-min-nodes verbose version wait
    wait-all-nodes wckey wrap""".split()
)

_SHORT = {
    "-J": "job-name",
    "-o": "output",
    "-e": "error",
    "-t": "time",
    "-N": "nodes",
    "-n": "ntasks",
    "-D": "chdir",
}


def parse_time_limit(text: str) -> int | None:
    """Seconds in a Slurm time string (``min``, ``min:sec``, ``h:m:s``, ``d-h[:m[:s]]``).

    ``UNLIMITED``/``INFINITE`` give ``None``. Raises :class:`BatchScriptError` on anything else.
    """
    t = text.strip()
    if t.upper() in ("UNLIMITED", "INFINITE"):
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", t)
    if not m:
        raise BatchScriptError(f"Invalid time limit specification: {text!r}")
    days, first, second, third = m.groups()
    a, b, c = int(first), int(second or 0), int(third or 0)
    if days is not None:  # d-h[:m[:s]]
        return int(days) * 86400 + a * 3600 + b * 60 + c
    if third is not None:  # h:m:s
        return a * 3600 + b * 60 + c
    if second is not None:  # m:s
        return a * 60 + b
    return a * 60  # minutes


def _parse_signal(text: str) -> tuple[int, int]:
    spec = text.split(":", 1)[1] if text.startswith(("B:", "R:")) else text
    name, _, secs = spec.partition("@")
    try:
        number = (
            int(name)
            if name.isdigit()
            else signal.Signals["SIG" + name.upper().removeprefix("SIG")]
        )
        return int(number), int(secs) if secs else 60
    except (KeyError, ValueError):
        raise BatchScriptError(f"Invalid --signal specification: {text!r}") from None


def long_option(name: str) -> str:
    """The full sbatch option ``name`` stands for (an exact name or an unambiguous prefix).

    Raises
    ------
    BatchScriptError
        ``name`` is a prefix of several options.
    """
    if name in SBATCH_LONG_OPTIONS:
        return name
    matches = sorted(o for o in SBATCH_LONG_OPTIONS if o.startswith(name))
    if len(matches) > 1:
        raise BatchScriptError(f"option '--{name}' is ambiguous; possibilities: {matches}")
    return matches[0] if matches else name


def expand_names(pattern: str, job_name: str, user: str) -> str:
    """``%x`` (job name), ``%u`` (user) of a file name pattern; ``%j`` and ``%%`` kept for later."""
    values = {"x": job_name.replace("%", "%%"), "u": user, "j": "%j", "%": "%%"}
    return re.sub(r"%([%xuj])", lambda m: values[m.group(1)], pattern)


def expand_job_id(pattern: str, jobid: str) -> str:
    """The file name of a pattern from :func:`expand_names` for job ``jobid``."""
    return re.sub(r"%([%j])", lambda m: jobid if m.group(1) == "j" else "%", pattern)


def _directive_options(line: str) -> list[tuple[str, str]]:
    """``(long option name, value)`` pairs of one ``#SBATCH`` line."""
    tokens = line.split()[1:]
    pairs, i = [], 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("#"):  # a trailing comment ends the directive
            break
        if tok.startswith("--"):
            name, eq, value = tok[2:].partition("=")
            if not eq and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                value, i = tokens[i + 1], i + 1
            pairs.append((long_option(name), value))
        elif tok[:2] in _SHORT:
            value = tok[2:]
            if not value and i + 1 < len(tokens):
                value, i = tokens[i + 1], i + 1
            pairs.append((_SHORT[tok[:2]], value))
        i += 1
    return pairs


def _to_int(name: str, value: str) -> int:
    try:
        n = int(value.split("-")[0])
    except ValueError:
        raise BatchScriptError(f"Invalid --{name} value: {value!r}") from None
    if n < 1:
        raise BatchScriptError(f"Invalid --{name} value: {value!r}")
    return n


def parse_batch_script(text: str) -> BatchOptions:
    """Read the ``#SBATCH`` directives of ``text``.

    Parameters
    ----------
    text : str
        The whole script.

    Returns
    -------
    BatchOptions

    Raises
    ------
    BatchScriptError
        No ``#!`` line, a NUL byte, or an option with an invalid value.
    """
    if not text.startswith("#!") or "\n" not in text:
        raise BatchScriptError(NOT_A_SCRIPT)
    if "\0" in text:
        raise BatchScriptError("Batch script contains NULL character")
    opts: dict[str, Any] = {}
    for line in text.splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if not stripped.startswith("#SBATCH"):
            continue
        for name, value in _directive_options(stripped):
            if name in ("job-name", "comment", "output", "error", "chdir"):
                opts[name.replace("-", "_")] = value
            elif name == "time":
                opts["time_limit_s"] = parse_time_limit(value)
            elif name in ("nodes", "ntasks"):
                opts[name] = _to_int(name, value)
            elif name == "signal":
                opts["signal_spec"] = _parse_signal(value)
    return BatchOptions(**opts)
