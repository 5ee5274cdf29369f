"""Whom job scripts and ``/utilities/command`` run as.

The emulator often runs as root (``make demo``); a job running as root could read the emulator's
secrets (admin and static token files, the clients file) and use them. So when the server is root,
jobs and commands run as an unprivileged user (``nobody`` by default), which owns the account
directories and the files it must write; the secret files stay 0600 root's.

Where that is impossible the jobs run as the server's own user, and a warning says so: the server
is not root (then it has no other user to become), the user does not exist, or it cannot reach the
filesystem root (a parent directory such as pytest's ``/tmp/pytest-of-root`` is private).
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def reachable_by_others(path: Path) -> bool:
    """True when every existing directory above and at ``path`` lets others traverse it."""
    for directory in [path, *path.parents]:
        try:
            mode = directory.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


class JobUser:
    """An unprivileged account jobs run as, or ``None`` for the server's own user."""

    def __init__(self, account: pwd.struct_passwd | None):
        self.account = account

    @classmethod
    def choose(cls, wanted: str, root: Path) -> JobUser:
        """``wanted`` is ``auto`` (``nobody`` when possible), ``server``, or a user name.

        Raises
        ------
        ValueError
            A named user that does not exist or cannot reach ``root``.
        """
        if wanted == "server" or os.geteuid() != 0:
            if wanted not in ("server", "auto"):
                raise ValueError(f"--job-user {wanted}: the server is not root")
            return cls(None)
        name = "nobody" if wanted == "auto" else wanted
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            if wanted != "auto":
                raise ValueError(f"--job-user {wanted}: no such user") from None
            log.warning("no user %s: jobs run as the server's user and can read its secrets", name)
            return cls(None)
        if not reachable_by_others(root.resolve()):
            if wanted != "auto":
                raise ValueError(f"--job-user {wanted}: cannot reach {root}")
            log.warning(
                "%s cannot reach %s (a private parent directory): jobs run as the server's "
                "user and can read its secrets",
                name,
                root,
            )
            return cls(None)
        return cls(account)

    def reaching(self, directory: Path) -> JobUser:
        """This user if it can traverse to ``directory`` too, else the server's (with a warning)."""
        if self.account is None or reachable_by_others(directory.resolve()):
            return self
        log.warning(
            "%s cannot reach %s: jobs run as the server's user and can read its secrets",
            self.account.pw_name,
            directory,
        )
        return JobUser(None)

    def reaching_python(self) -> JobUser:
        """This user if it can run the server's Python (the venv's link, the interpreter it links
        to and its standard library), else the server's: a venv made from a Python under a
        private home (pyenv in ``/root``) cannot run as another user."""
        executable = Path(sys.executable)
        user = self
        for directory in (executable.parent, executable.resolve().parent, Path(sys.base_prefix)):
            user = user.reaching(directory)
        return user

    def sbatch_options(self) -> list[str]:
        """``sbatch`` options that run the job as this user (root may set them)."""
        if self.account is None:
            return []
        return [f"--uid={self.account.pw_uid}", f"--gid={self.account.pw_gid}"]

    def popen_kwargs(self) -> dict[str, Any]:
        """``subprocess`` arguments that start a child as this user."""
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def give(self, path: Path) -> None:
        """Make ``path`` (not a symlink's target) this user's, so its jobs can write it."""
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid, follow_symlinks=False)

    def give_fd(self, fd: int) -> None:
        """Make the open file ``fd`` this user's."""
        if self.account is not None:
            os.fchown(fd, self.account.pw_uid, self.account.pw_gid)
