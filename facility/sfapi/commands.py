"""``/utilities/command``: an allow-list of read-mostly tools (and ``rm``), each with the options it
may take, and the programs of the job environment the dashboard runs (:data:`PROGRAMS`).

Every argument is classified by the command's spec, never guessed at: a flag must be one the
command allows (so file-list options such as ``wc --files0-from`` or ``md5sum -c``, and host
changes such as ``date -s`` or ``hostname NAME``, are refused), an option value is taken as its
own argument or glued (``-n5``, ``--lines=5``), and every operand of a file command is a facility
path, relative ones from the account's home, resolved and confined like any other request path.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .config import Account
from .filesystem import PathError, normalize, resolve

COMMAND_TIMEOUT_S = 60


@dataclass(frozen=True)
class CommandSpec:
    """What one allowed command may be given.

    Attributes
    ----------
    flags : frozenset of str
        Options without a value (short ones may be grouped: ``-la``).
    valued : frozenset of str
        Options taking a value (``-n 5``, ``-n5``, ``--lines=5``); values are not paths.
    operands : {"paths", "none", "format", "seconds", "text"}
        What the other arguments are: facility paths, nothing, a ``+FORMAT``, a duration, or text.
    """

    flags: frozenset[str] = frozenset()
    valued: frozenset[str] = frozenset()
    operands: str = "paths"


def _spec(flags: str = "", valued: str = "", operands: str = "paths") -> CommandSpec:
    return CommandSpec(frozenset(flags.split()), frozenset(valued.split()), operands)


COMMANDS: dict[str, CommandSpec] = {
    "ls": _spec("-l -a -A -1 -d -h -t -r -S -i -n"),
    "cat": _spec("-n -A -E"),
    "head": _spec("-q", "-n -c --lines --bytes"),
    "tail": _spec("-q", "-n -c --lines --bytes"),
    "wc": _spec("-c -l -w -m -L --bytes --lines --words --chars"),
    "stat": _spec("-L -t", "-c --format"),
    "du": _spec("-s -h -b -k -a -c --apparent-size"),
    "md5sum": _spec("-b -t"),
    "sha256sum": _spec("-b -t"),
    "echo": _spec("-n -e -E", operands="text"),
    "pwd": _spec(operands="none"),
    "date": _spec("-u -R --utc", "-I", operands="format"),
    "hostname": _spec("-s -f -i -I", operands="none"),
    "true": _spec(operands="none"),
    "false": _spec(operands="none"),
    "mkdir": _spec("-p -v", "-m --mode"),
    "touch": _spec("-c"),
    "sleep": _spec(operands="seconds"),
    "rm": _spec("-f"),
}
#: Programs of the account's job environment a command may run, by their leading words: the
#: dashboard's ``python -m kernels.io.event_file RUN OUT --chunk C --event E`` (run with the
#: server's Python, as jobs are; RUN and OUT confined like any operand).
PROGRAMS: dict[tuple[str, ...], CommandSpec] = {
    ("python", "-m", "kernels.io.event_file"): _spec(valued="--chunk --event"),
}
ALLOWED_COMMANDS = frozenset(COMMANDS) | {" ".join(words) for words in PROGRAMS}


class CommandError(Exception):
    """The command is refused; the message says which argument and why."""


def _option(spec: CommandSpec, name: str, arg: str, rest: list[str]) -> list[str]:
    """``arg`` (and the value it takes from ``rest``) as checked arguments."""
    if arg.startswith("--"):
        option, equals, _ = arg.partition("=")
        if option in spec.flags and not equals:
            return [arg]
        if option in spec.valued:
            return [arg] if equals else [arg, _value(name, option, rest)]
        raise CommandError(f"{name}: option {option}: Permission denied: not allowed here")
    if arg[:2] in spec.valued:
        return [arg] if len(arg) > 2 else [arg, _value(name, arg, rest)]
    for letter in arg[1:]:
        if f"-{letter}" not in spec.flags:
            raise CommandError(f"{name}: option -{letter}: Permission denied: not allowed here")
    return [arg]


def _value(name: str, option: str, rest: list[str]) -> str:
    if not rest:
        raise CommandError(f"{name}: option {option} needs a value")
    return rest.pop(0)


def _operand(spec: CommandSpec, name: str, root: Path, account: Account, arg: str) -> str:
    if spec.operands == "none":
        raise CommandError(f"{name}: takes no operand: {arg!r} refused (it may change the host)")
    if spec.operands == "format" and not arg.startswith("+"):
        raise CommandError(f"{name}: only a +FORMAT operand is allowed: {arg!r} refused")
    if spec.operands == "seconds" and not re.fullmatch(r"\d+(\.\d+)?", arg):
        raise CommandError(f"{name}: invalid time interval {arg!r}")
    if spec.operands == "seconds" and float(arg) > COMMAND_TIMEOUT_S:
        raise CommandError(f"{name}: at most {COMMAND_TIMEOUT_S} seconds")
    if spec.operands != "paths":
        return arg
    home = account.paths[0]
    path = arg if arg.startswith("/") else str(PurePosixPath(home, arg))
    return str(resolve(root, account, normalize(path)))


def command_argv(root: Path, account: Account, command: str) -> list[str]:
    """The argv to run for ``command``, every path resolved to its confined host path.

    Raises
    ------
    CommandError
        Unparsable, not allowed, an option the command may not take, or a bad operand.
    PathError
        A path operand outside the account's directories.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise CommandError(f"cannot parse command: {exc}") from None
    if any("\0" in w for w in words):
        raise CommandError("command contains a NUL byte")
    program = next((p for p in PROGRAMS if tuple(words[: len(p)]) == p), None)
    if program is not None:
        name, rest, spec = " ".join(program), words[len(program) :], PROGRAMS[program]
        argv, operands_only = [sys.executable, *program[1:]], False
    elif words and words[0] in COMMANDS:
        name, rest, spec = words[0], words[1:], COMMANDS[words[0]]
        argv, operands_only = [name], False
    else:
        raise CommandError(
            f"command not allowed: {words[0] if words else ''!r}; "
            f"allowed: {', '.join(sorted(ALLOWED_COMMANDS))}"
        )
    while rest:
        arg = rest.pop(0)
        if arg == "--" and not operands_only:
            operands_only = True
            argv.append(arg)
        elif arg.startswith("-") and len(arg) > 1 and not operands_only:
            if "/" in arg and "=" not in arg:
                raise PathError(f"{arg}: give the path as its own argument or as --option=PATH")
            argv += _option(spec, name, arg, rest)
        else:
            argv.append(_operand(spec, name, root, account, arg))
    return argv
