"""Command lines: ``python -m facility.sfapi serve`` with its embedded defaults, ``facility.slurm``."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time

import pytest
import requests

from facility import slurm
from facility.ports import free_port
from facility.sfapi.testing import PROJECT_ROOT


def test_serve_creates_private_static_and_admin_tokens(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facility.sfapi",
            "serve",
            "--port",
            str(port),
            "--root",
            str(tmp_path / "fs"),
            "--state-dir",
            str(state),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1.2"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                requests.get(url + "/status", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        for name in ("static_token", "admin_token"):
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
        token = (state / "static_token").read_text().strip()
        r = requests.get(url + "/account/", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.json()["name"] == "sfxflow"
    finally:
        proc.terminate()
        log = proc.communicate(timeout=15)[0].decode()
    assert str(state / "static_token") in log and token not in log


def test_serve_refuses_a_world_readable_token_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("secret")
    os.chmod(token_file, 0o644)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "facility.sfapi",
            "serve",
            "--port",
            "1",
            "--root",
            str(tmp_path / "fs"),
            "--state-dir",
            str(tmp_path / "state"),
            "--static-token-file",
            str(token_file),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "readable by others" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "secret" not in proc.stderr


@pytest.mark.skipif(not shutil.which("slurmctld"), reason="slurm-wlm is not installed")
def test_slurm_up_and_down_command(tmp_path, capsys):
    args = [
        "--var-dir",
        str(tmp_path),
        "--ctld-port",
        str(free_port()),
        "--node-port",
        str(free_port()),
    ]
    assert slurm.main(["up", *args]) == 0
    try:
        assert f"SLURM_CONF={tmp_path}/slurm.conf" in capsys.readouterr().out
        cluster = slurm.SlurmCluster(tmp_path)
        info = subprocess.run(
            ["sinfo", "-h", "-o", "%P %T"],
            env=slurm.slurm_env(cluster),
            capture_output=True,
            text=True,
        )
        assert info.stdout.split() == ["regular*", "idle"]
    finally:
        assert slurm.main(["down", *args]) == 0
    for daemon in ("slurmd", "slurmctld", "munged"):
        assert slurm._pid_alive(cluster.pid_file(daemon)) is None
