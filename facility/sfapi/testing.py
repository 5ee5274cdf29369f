"""Start the emulator for tests and benchmarks, with freshly generated credentials.

Usage::

    from facility.sfapi.testing import running_emulator

    with running_emulator(tmp_path, backend="local") as emu:
        client = sfapi_client.Client(emu.base_url, credentials_file=emu.credentials.credentials_file)
        emu.admin.schedule_outage("perlmutter", start, end)
        (emu.root / "global/homes/sfxflow/input.txt").read_text()
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import requests
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from facility.private_files import write_private
from facility.slurm import free_port

from .app import API_PREFIX, TOKEN_PATH
from .server import build_app

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_USERS = {"sfxflow": ["/"]}


@dataclass(frozen=True)
class Credentials:
    """One registered client of a running emulator.

    Attributes
    ----------
    user : str
    client_id : str
        13 characters, like NERSC client ids.
    private_key : str
        PEM of the client's RSA key (its public half is registered with the emulator).
    token_url : str
    credentials_file : Path
        JSON ``{"client_id", "secret", "token_url"}``, mode 0600; readable by both this project's
        client and the official ``sfapi_client`` (which calls the key ``secret``).
    static_token : str or None
        A non-expiring bearer token (only for the first user).
    """

    user: str
    client_id: str
    private_key: str
    token_url: str
    credentials_file: Path
    static_token: str | None = None


class EmulatorAdmin:
    """Calls the emulator's ``/_emulator`` admin routes."""

    def __init__(self, server_url: str, admin_token: str):
        self._url = server_url + "/_emulator"
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {admin_token}"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        r = self._session.request(method, self._url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def set_status(self, system: str, status: str, notes: list[str] = ()) -> dict:
        """Force ``system``'s status (active, unavailable, degraded, other)."""
        return self._call("PUT", f"/status/{system}", {"status": status, "notes": list(notes)})

    def schedule_outage(
        self,
        system: str,
        start: datetime,
        end: datetime,
        description: str = "scheduled maintenance",
    ) -> None:
        """Add an outage; while it is current, ``GET /status/{system}`` says unavailable."""
        self._call(
            "POST",
            "/outages",
            {
                "name": system,
                "start_at": start.isoformat(),
                "end_at": end.isoformat(),
                "description": description,
            },
        )

    def clear_outages(self) -> None:
        self._call("DELETE", "/outages")

    def inject_fault(
        self,
        kind: str,
        path: str = "/",
        method: str | None = None,
        count: int | None = 1,
        seconds: float = 0.0,
        status: int = 503,
    ) -> None:
        """Add a fault rule (see :mod:`facility.sfapi.faults`); ``path`` is a URL path prefix."""
        self._call(
            "POST",
            "/faults",
            {
                "kind": kind,
                "path": path,
                "method": method,
                "count": count,
                "seconds": seconds,
                "status": status,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")


class RunningEmulator(NamedTuple):
    """What :func:`running_emulator` yields."""

    base_url: str  # e.g. http://127.0.0.1:PORT/api/v1.2
    credentials: Credentials  # of the first user
    admin: EmulatorAdmin
    root: Path  # host directory holding the machines' filesystem
    all_credentials: dict  # user -> Credentials


def _new_client(user: str, paths: list[str], uid: int, token_url: str, secrets_dir: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    client_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(13))
    cred_file = write_private(
        secrets_dir / f"{user}.json",
        json.dumps({"client_id": client_id, "secret": private_pem, "token_url": token_url}),
    )
    registration = {
        "client_id": client_id,
        "user": user,
        "uid": uid,
        "public_key": public_pem,
        "paths": paths,
    }
    return Credentials(user, client_id, private_pem, token_url, cred_file), registration


def _wait_ready(url: str, timeout: float, proc: subprocess.Popen | None, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"emulator exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url + "/status", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"emulator not ready at {url} after {timeout}s; log: {log}")


@contextmanager
def running_emulator(
    tmp_path: Path,
    backend: str = "local",
    *,
    in_process: bool = False,
    users: dict[str, list[str]] | None = None,
    token_lifetime: int = 600,
    max_upload_bytes: int = 8 * 1024 * 1024,
    kill_wait: float = 2.0,
    slurm_var_dir: Path | None = None,
    machine_roots: dict[str, Path] | None = None,
) -> Iterator[RunningEmulator]:
    """Run an emulator on a free 127.0.0.1 port for the duration of the ``with`` block.

    Parameters
    ----------
    tmp_path : Path
        Directory for the filesystem root (``tmp_path/fs``), state, secrets and the log.
    backend : {"local", "slurm"}
        ``slurm`` needs a cluster started with :func:`facility.slurm.up` in ``slurm_var_dir``.
    in_process : bool
        Serve from a thread of this process instead of a ``python -m facility.sfapi`` child.
    users : dict of str to list of str
        Accounts to register and the facility paths each may use (default ``{"sfxflow": ["/"]}``).
        The first user also gets a static token.
    token_lifetime : int
        Access token lifetime in seconds (short values let tests see tokens expire).
    max_upload_bytes, kill_wait : as ``serve``'s ``--max-upload-bytes`` and ``--kill-wait``.
    machine_roots : dict of str to Path
        Give a machine its own filesystem root instead of ``tmp_path/fs``.

    Yields
    ------
    RunningEmulator
        ``(base_url, credentials, admin, root, all_credentials)``.
    """
    users = users or DEFAULT_USERS
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    base_url, token_url = server_url + API_PREFIX, server_url + TOKEN_PATH
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    creds, registrations = {}, []
    for uid, (user, paths) in enumerate(users.items(), start=2001):
        creds[user], reg = _new_client(user, paths, uid, token_url, secrets_dir)
        registrations.append(reg)
    first = next(iter(creds))
    static_token = secrets.token_urlsafe(32)
    creds[first] = Credentials(**{**creds[first].__dict__, "static_token": static_token})
    admin_token = secrets.token_urlsafe(32)
    clients_file = write_private(
        secrets_dir / "clients.json", json.dumps({"clients": registrations})
    )
    static_file = write_private(secrets_dir / "static_token", static_token)
    admin_file = write_private(secrets_dir / "admin_token", admin_token)
    root = tmp_path / "fs"
    args = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend",
        backend,
        "--root",
        str(root),
        "--state-dir",
        str(tmp_path / "state"),
        "--clients",
        str(clients_file),
        "--static-token-file",
        str(static_file),
        "--static-token-user",
        first,
        "--admin-token-file",
        str(admin_file),
        "--token-lifetime",
        str(token_lifetime),
        "--max-upload-bytes",
        str(max_upload_bytes),
        "--kill-wait",
        str(kill_wait),
    ]
    args += ["--slurm-var-dir", str(slurm_var_dir)] if slurm_var_dir else []
    for machine, directory in (machine_roots or {}).items():
        args += ["--machine-root", f"{machine}={directory}"]
    log = tmp_path / "emulator.log"
    emulator = RunningEmulator(
        base_url, creds[first], EmulatorAdmin(server_url, admin_token), root, creds
    )
    if in_process:
        from .server import parse_args

        _, config = parse_args(args)
        server = uvicorn.Server(
            uvicorn.Config(build_app(config), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="sfapi-emulator", daemon=True)
        thread.start()
        try:
            _wait_ready(base_url, 20, None, log)
            yield emulator
        finally:
            server.should_exit = True
            thread.join(timeout=15)
        return
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facility.sfapi", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(base_url, 30, proc, log)
        yield emulator
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
