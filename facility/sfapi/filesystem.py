"""Facility paths ↔ files under a machine's root directory, confined to the root and the account.

A facility path such as ``/pscratch/sd/a/alice/run1`` names ``<machine root>/pscratch/sd/a/alice/run1``.
``..`` is refused outright, symlinks that resolve outside the root are refused, and an account may
only touch paths under its own ``paths``.
"""

from __future__ import annotations

import grp
import pwd
import stat
import time
from pathlib import Path, PurePosixPath

from .config import Account


class PathError(Exception):
    """A path cannot be used; the message follows the coreutils wording the real API passes on."""


def normalize(facility_path: str) -> str:
    """Canonical absolute facility path (``//a/./b/`` → ``/a/b``); raises PathError on ``..``."""
    parts = [p for p in facility_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathError(f"{facility_path}: Permission denied: '..' is not allowed in paths")
    return "/" + "/".join(parts)


def _allowed(account: Account, path: str) -> bool:
    pp = PurePosixPath(path)
    return any(pp == PurePosixPath(a) or pp.is_relative_to(a) for a in account.paths)


def resolve(root: Path, account: Account, facility_path: str) -> Path:
    """The host path of ``facility_path`` under ``root``, checked for escapes and permissions.

    Parameters
    ----------
    root : Path
        The machine's root directory.
    account : Account
        Who asks; the path must lie under one of ``account.paths``.
    facility_path : str
        Path as the API caller wrote it.

    Raises
    ------
    PathError
        ``..`` in the path, a symlink leading outside ``root``, or a path the account may not use.
    """
    path = normalize(facility_path)
    if not _allowed(account, path):
        raise PathError(f"{path}: Permission denied")
    real_root = root.resolve()
    host = (real_root / path.lstrip("/")).resolve()
    if host != real_root and not host.is_relative_to(real_root):
        raise PathError(f"{path}: Permission denied: resolves outside the machine's filesystem")
    if not _allowed(account, "/" + str(host.relative_to(real_root)).lstrip(".")):
        raise PathError(f"{path}: Permission denied: a symlink leads outside your directories")
    return host


def _owner(uid: int, gid: int) -> tuple[str, str]:
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user, group


def ls_entry(host: Path, name: str) -> dict:
    """One ``ls -l`` row in the API's DirectoryEntry shape (symlinks shown as ``name -> target``)."""
    st = host.lstat()
    user, group = _owner(st.st_uid, st.st_gid)
    if stat.S_ISLNK(st.st_mode):
        name = f"{name} -> {host.readlink()}"
    return {
        "perms": stat.filemode(st.st_mode),
        "hardlinks": st.st_nlink,
        "user": user,
        "group": group,
        "size": st.st_size,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(st.st_mtime)),
        "name": name,
    }


def list_path(root: Path, account: Account, facility_path: str) -> list[dict]:
    """Entries of ``ls -la facility_path``: ``.``, ``..`` and children for a directory, else the file.

    Raises
    ------
    PathError
        As :func:`resolve`, or ``No such file or directory``.
    """
    host = resolve(root, account, facility_path)
    if not host.exists():
        raise PathError(
            f"ls: cannot access '{normalize(facility_path)}': No such file or directory"
        )
    if not host.is_dir():
        return [ls_entry(host, normalize(facility_path))]
    entries = [ls_entry(host, "."), ls_entry(host.parent if host != root.resolve() else host, "..")]
    entries += [ls_entry(child, child.name) for child in sorted(host.iterdir())]
    return entries
