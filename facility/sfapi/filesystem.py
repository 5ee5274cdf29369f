"""Facility paths ↔ files under a machine's root directory, confined to the root and the account.

A facility path such as ``/pscratch/sd/a/alice/run1`` names ``<machine root>/pscratch/sd/a/alice/run1``.
This module is the one way the emulator reaches a file a request names:

- :func:`normalize` refuses ``..``, NUL bytes and over-long names before anything touches disk;
- :func:`resolve` follows symlinks and refuses a real path outside the root or the account's
  ``paths`` (dot names such as ``/.proj`` are compared as they are);
- :func:`open_confined` opens the resolved file relative to its directory's descriptor with
  ``O_NOFOLLOW``, after checking that descriptor is still the confined directory, so a symlink
  planted at the last component (or swapped in after the check) is never followed.

Every failure is a :class:`PathError` whose message is the API's error text.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import time
from pathlib import Path, PurePosixPath

from .config import Account

NAME_MAX = 255
PATH_MAX = 4096


class PathError(Exception):
    """A path cannot be used; the message follows the coreutils wording the real API passes on."""


def display_name(name: str) -> str:
    """A file name as JSON can carry it: undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def normalize(facility_path: str) -> str:
    """Canonical absolute facility path (``//a/./b/`` → ``/a/b``).

    Raises
    ------
    PathError
        ``..``, a NUL byte, a component over 255 bytes or a path over 4096 bytes.
    """
    shown = display_name(facility_path.replace("\0", "\\0"))[:200]
    if "\0" in facility_path:
        raise PathError(f"{shown}: Invalid argument: NUL byte in path")
    parts = [p for p in facility_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathError(f"{shown}: Permission denied: '..' is not allowed in paths")
    if any(len(os.fsencode(p)) > NAME_MAX for p in parts) or len(facility_path) > PATH_MAX:
        raise PathError(f"{shown}: File name too long")
    return "/" + "/".join(parts)


def _allowed(account: Account, path: str) -> bool:
    pp = PurePosixPath(path)
    return any(pp == PurePosixPath(a) or pp.is_relative_to(a) for a in account.paths)


def os_error(path: str, exc: OSError | RuntimeError) -> PathError:
    """The API error for an OS failure on ``path`` (symlink loop, name too long, ...)."""
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return PathError(f"{path}: Too many levels of symbolic links")
    return PathError(f"{path}: {exc.strerror or exc}")


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
        As :func:`normalize`, a symlink leading outside ``root`` or the account's paths, a symlink
        loop, or a path the account may not use.
    """
    path = normalize(facility_path)
    if not _allowed(account, path):
        raise PathError(f"{path}: Permission denied")
    real_root = root.resolve()
    try:
        host = (real_root / path.lstrip("/")).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise os_error(path, exc) from None
    if host != real_root and not host.is_relative_to(real_root):
        raise PathError(f"{path}: Permission denied: resolves outside the machine's filesystem")
    if not _allowed(account, to_facility(real_root, host)):
        raise PathError(f"{path}: Permission denied: a symlink leads outside your directories")
    return host


def to_facility(real_root: Path, host: Path) -> str:
    """The facility path of a resolved host path under the resolved ``real_root``."""
    relative = host.relative_to(real_root)
    return "/" + relative.as_posix() if relative.parts else "/"


def open_in_dir(directory: Path, name: str, flags: int, mode: int = 0o644) -> int:
    """``openat(directory, name, flags | O_NOFOLLOW)`` once ``directory`` is verified unchanged.

    ``directory`` must be a resolved path (no symlinks); its descriptor is checked against it, so
    a directory swapped for a symlink after :func:`resolve` is refused.

    Raises
    ------
    OSError
        The open failed (ELOOP when ``name`` is a symlink).
    """
    if not name or "/" in name or name in (".", ".."):
        raise OSError(errno.EINVAL, f"invalid file name {name!r}")
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if os.readlink(f"/proc/self/fd/{dir_fd}") != str(directory):
            raise OSError(errno.EXDEV, "directory changed while it was opened")
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def open_confined(
    root: Path, account: Account, facility_path: str, flags: int, mode: int = 0o644
) -> tuple[int, Path]:
    """A descriptor of the confined file ``facility_path`` and its host path.

    Raises
    ------
    PathError
        As :func:`resolve`, or the open failed (``No such file or directory``, ...).
    """
    host = resolve(root, account, facility_path)
    try:
        return open_in_dir(host.parent, host.name, flags, mode), host
    except OSError as exc:
        raise os_error(normalize(facility_path), exc) from None


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
    name = display_name(name)
    if stat.S_ISLNK(st.st_mode):
        name = f"{name} -> {display_name(os.readlink(host))}"
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
    path = normalize(facility_path)
    try:
        if not host.exists():
            raise PathError(f"ls: cannot access '{path}': No such file or directory")
        if not host.is_dir():
            return [ls_entry(host, path)]
        parent = host.parent if host != root.resolve() else host
        entries = [ls_entry(host, "."), ls_entry(parent, "..")]
        entries += [ls_entry(child, child.name) for child in sorted(host.iterdir())]
    except OSError as exc:
        raise os_error(path, exc) from None
    return entries
