"""Settings of one emulator process and the accounts it knows.

Accounts come from a clients file (JSON, readable only by its owner)::

    {"clients": [{"client_id": "abcdefghijklm", "user": "alice", "uid": 1001,
                  "public_key": "-----BEGIN PUBLIC KEY-----...", "paths": ["/global/homes/alice"]}]}

``paths`` lists the facility directories the user may touch (default ``["/"]``, the whole
machine root). A static bearer token for the embedded default lives alone in its own 0600 file.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

MACHINES = ("perlmutter", "dtns", "dtn01")
COMPUTE_MACHINES = ("perlmutter",)


class ConfigError(ValueError):
    """A settings file is missing, malformed or too open."""


@dataclass(frozen=True)
class Account:
    """One user of the center.

    Attributes
    ----------
    user : str
    uid : int
    paths : tuple of str
        Facility directories the user may read and write.
    """

    user: str
    uid: int
    paths: tuple[str, ...] = ("/",)


@dataclass(frozen=True)
class Client:
    """An API client registered for private_key_jwt: its id, public key and account."""

    client_id: str
    public_key_pem: str
    account: Account


@dataclass
class EmulatorConfig:
    """Everything ``python -m facility.sfapi serve`` is told on its command line."""

    root: Path
    state_dir: Path
    backend: str = "local"
    machine_roots: dict[str, Path] = field(default_factory=dict)
    clients_file: Path | None = None
    static_token_file: Path | None = None
    static_token_user: str = "sfxflow"
    admin_token_file: Path | None = None
    token_lifetime_s: int = 600
    max_upload_bytes: int = 64 * 1024 * 1024
    kill_wait_s: float = 5.0
    max_running_jobs: int = 8
    slurm_var_dir: Path | None = None
    #: The token endpoint's URL as clients reach it: the only audience client assertions may name.
    token_url: str = "http://127.0.0.1:8001/oauth2/token"
    #: Seconds between a submission's POST and its sbatch (the real API is asynchronous too).
    submit_delay_s: float = 0.0
    #: Commands of /utilities/command running at once; more are refused with HTTP 429.
    max_commands: int = 4
    #: Whom jobs and commands run as: auto (nobody when root and possible), server, or a name.
    job_user: str = "auto"

    def machine_root(self, machine: str) -> Path:
        """Directory on this host that holds ``machine``'s filesystem (shared by default)."""
        return self.machine_roots.get(machine, self.root)


def read_private_file(path: Path) -> str:
    """Text of a secret file, refused unless only its owner may read it (mode 0600 or 0400)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    return path.read_text()


def ensure_token_file(path: Path) -> Path:
    """``path``, created (mode 0600) with a fresh random token if it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path


def load_clients(path: Path) -> dict[str, Client]:
    """Registered clients by client id, from the clients file described in the module docstring."""
    try:
        doc = json.loads(read_private_file(path))
        clients = {}
        for i, entry in enumerate(doc["clients"]):
            account = Account(
                entry["user"], int(entry.get("uid", 1000 + i)), tuple(entry.get("paths", ["/"]))
            )
            clients[entry["client_id"]] = Client(entry["client_id"], entry["public_key"], account)
        return clients
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"malformed clients file {path}: {exc!r}") from None
