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
from pathlib import Path
from typing import NamedTuple

import requests
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from facility.ports import free_port
from facility.private_files import write_private

from .app import API_PREFIX, TOKEN_PATH
from .emulator_admin import EmulatorAdmin
from .server import build_app, parse_args

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


class _Secrets(NamedTuple):
    credentials: dict[str, Credentials]
    clients_file: Path
    static_file: Path
    admin_file: Path
    admin_token: str


def _register(users: dict[str, list[str]], token_url: str, secrets_dir: Path) -> _Secrets:
    """Fresh keys per user, a static token for the first and an admin token, in 0600 files."""
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    creds, registrations = {}, []
    for uid, (user, paths) in enumerate(users.items(), start=2001):
        creds[user], reg = _new_client(user, paths, uid, token_url, secrets_dir)
        registrations.append(reg)
    first = next(iter(creds))
    static_token = secrets.token_urlsafe(32)
    creds[first] = Credentials(**{**creds[first].__dict__, "static_token": static_token})
    admin_token = secrets.token_urlsafe(32)
    return _Secrets(
        creds,
        write_private(secrets_dir / "clients.json", json.dumps({"clients": registrations})),
        write_private(secrets_dir / "static_token", static_token),
        write_private(secrets_dir / "admin_token", admin_token),
        admin_token,
    )


@contextmanager
def _serve_in_process(args: list[str], port: int, base_url: str, log: Path) -> Iterator[None]:
    _, config = parse_args(args)
    server = uvicorn.Server(
        uvicorn.Config(build_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="sfapi-emulator", daemon=True)
    thread.start()
    try:
        _wait_ready(base_url, 20, None, log)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def _serve_subprocess(args: list[str], base_url: str, log: Path) -> Iterator[None]:
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
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    submit_delay: float = 0.0,
    job_user: str = "server",
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
    max_upload_bytes, kill_wait, submit_delay, job_user : as ``serve``'s options.
        ``job_user`` defaults to ``server`` here: the beamtime stack writes into the center's
        folders behind the API's back, as root.
    machine_roots : dict of str to Path
        Give a machine its own filesystem root instead of ``tmp_path/fs``.

    Yields
    ------
    RunningEmulator
        ``(base_url, credentials, admin, root, all_credentials)``.
    """
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    base_url = server_url + API_PREFIX
    kept = _register(users or DEFAULT_USERS, server_url + TOKEN_PATH, tmp_path / "secrets")
    first = next(iter(kept.credentials))
    root = tmp_path / "fs"
    options = {
        "--host": "127.0.0.1",
        "--port": port,
        "--backend": backend,
        "--root": root,
        "--state-dir": tmp_path / "state",
        "--clients": kept.clients_file,
        "--static-token-file": kept.static_file,
        "--static-token-user": first,
        "--admin-token-file": kept.admin_file,
        "--token-lifetime": token_lifetime,
        "--max-upload-bytes": max_upload_bytes,
        "--kill-wait": kill_wait,
        "--submit-delay": submit_delay,
        "--job-user": job_user,
    }
    if slurm_var_dir:
        options["--slurm-var-dir"] = slurm_var_dir
    args = ["serve", *(str(x) for item in options.items() for x in item)]
    for machine, directory in (machine_roots or {}).items():
        args += ["--machine-root", f"{machine}={directory}"]
    log = tmp_path / "emulator.log"
    admin = EmulatorAdmin(server_url, kept.admin_token)
    emulator = RunningEmulator(base_url, kept.credentials[first], admin, root, kept.credentials)
    serving = (
        _serve_in_process(args, port, base_url, log)
        if in_process
        else _serve_subprocess(args, base_url, log)
    )
    with serving:
        yield emulator
