"""Assemble the emulator from its settings files and serve it with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from .app import TOKEN_PATH, create_app
from .auth import TokenService
from .config import (
    Account,
    EmulatorConfig,
    ensure_token_file,
    load_clients,
    read_private_file,
)


def build_app(config: EmulatorConfig) -> FastAPI:
    """The emulator app for ``config``: clients, static token and admin token read from files.

    Raises
    ------
    ConfigError
        A settings file is missing, malformed, or readable by others.
    """
    config.root.mkdir(parents=True, exist_ok=True)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    clients = load_clients(config.clients_file) if config.clients_file else {}
    accounts = [c.account for c in clients.values()]
    static_token = static_account = None
    if config.static_token_file:
        static_token = read_private_file(config.static_token_file).strip()
        static_account = Account(config.static_token_user, 1000, ("/",))
        accounts.append(static_account)
    admin_token = (
        read_private_file(config.admin_token_file).strip() if config.admin_token_file else None
    )
    tokens = TokenService(
        clients,
        config.token_lifetime_s,
        static_token,
        static_account,
        token_url=config.token_url,
        replay_file=config.state_dir / "assertion_ids.json",
    )
    return create_app(config, tokens, accounts, admin_token)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m facility.sfapi", description="Superfacility API v1.2 emulator"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--backend", choices=["local", "slurm"], default="local")
    serve.add_argument(
        "--root",
        type=Path,
        default=Path("var/sfapi/fs"),
        help="directory holding the machines' filesystem",
    )
    serve.add_argument(
        "--machine-root",
        action="append",
        default=[],
        metavar="MACHINE=DIR",
        help="give one machine its own filesystem root",
    )
    serve.add_argument("--state-dir", type=Path, default=Path("var/sfapi/state"))
    serve.add_argument("--clients", type=Path, help="registered clients (JSON, mode 0600)")
    serve.add_argument(
        "--static-token-file",
        type=Path,
        help="file (0600) holding a static token; without it and --clients, "
        "STATE_DIR/static_token is created",
    )
    serve.add_argument("--static-token-user", default="sfxflow")
    serve.add_argument(
        "--admin-token-file",
        type=Path,
        help="file (0600) with the admin token (default STATE_DIR/admin_token, created if missing)",
    )
    serve.add_argument("--token-lifetime", type=int, default=600, help="access token seconds")
    serve.add_argument("--max-upload-bytes", type=int, default=64 * 1024 * 1024)
    serve.add_argument("--kill-wait", type=float, default=5.0, help="SIGTERM→SIGKILL seconds")
    serve.add_argument("--max-running", type=int, default=8, help="local backend job slots")
    serve.add_argument(
        "--slurm-var-dir",
        type=Path,
        default=Path("var/slurm"),
        help="var dir of `python -m facility.slurm up`",
    )
    serve.add_argument(
        "--public-url",
        help="URL clients reach the server at (default http://HOST:PORT); client assertions "
        "must name PUBLIC_URL/oauth2/token as their audience",
    )
    serve.add_argument(
        "--submit-delay", type=float, default=0.0, help="seconds from a job's POST to its sbatch"
    )
    serve.add_argument("--max-commands", type=int, default=4, help="commands running at once")
    serve.add_argument(
        "--job-user",
        default="auto",
        help="whom jobs and commands run as: auto (nobody when the server is root and nobody "
        "can reach --root), server, or a user name",
    )
    serve.add_argument("--log-level", default="warning")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, EmulatorConfig]:
    """Command line of ``python -m facility.sfapi serve``."""
    parser = _parser()
    args = parser.parse_args(argv)
    machine_roots = {}
    for item in args.machine_root:
        machine, eq, directory = item.partition("=")
        if not eq:
            parser.error(f"--machine-root expects MACHINE=DIR, got {item!r}")
        machine_roots[machine] = Path(directory).resolve()
    state_dir = args.state_dir.resolve()
    if args.static_token_file is None and args.clients is None:
        args.static_token_file = ensure_token_file(state_dir / "static_token")
    if args.admin_token_file is None:
        args.admin_token_file = ensure_token_file(state_dir / "admin_token")
    config = EmulatorConfig(
        root=args.root.resolve(),
        state_dir=state_dir,
        backend=args.backend,
        machine_roots=machine_roots,
        clients_file=args.clients,
        static_token_file=args.static_token_file,
        static_token_user=args.static_token_user,
        admin_token_file=args.admin_token_file,
        token_lifetime_s=args.token_lifetime,
        max_upload_bytes=args.max_upload_bytes,
        kill_wait_s=args.kill_wait,
        max_running_jobs=args.max_running,
        slurm_var_dir=args.slurm_var_dir.resolve(),
        token_url=(args.public_url or f"http://{args.host}:{args.port}").rstrip("/") + TOKEN_PATH,
        submit_delay_s=args.submit_delay,
        max_commands=args.max_commands,
        job_user=args.job_user,
    )
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        app = build_app(config)
    except ValueError as exc:  # a ConfigError, or a --job-user that cannot be
        print(f"facility.sfapi: error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).warning(
        "serving %s backend on http://%s:%d/api/v1.2; static token file: %s; admin token file: %s",
        config.backend,
        args.host,
        args.port,
        config.static_token_file,
        config.admin_token_file,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.log_level in ("debug", "info"),
    )
    return 0
