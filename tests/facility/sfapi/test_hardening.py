"""Regression tests of the emulator's hardening (issue 16, E1-E10): each failed on the old code."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from fastapi.testclient import TestClient

from facility import slurm
from facility.ports import free_port
from facility.sfapi.server import build_app, parse_args
from facility.sfapi.testing import running_emulator
from sfapi_client import BadRequest

M = "perlmutter"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def home(emu):
    """Alice's home on the host; whatever a test plants there is removed after it."""
    path = emu.root / "global/homes/alice"
    before = set(os.listdir(path))
    yield path
    for name in set(os.listdir(path)) - before:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            for child in target.iterdir():
                child.unlink()
            target.rmdir()
        else:
            target.unlink()


@pytest.fixture
def raw(emu):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.all_credentials['alice'].static_token}"
    return session, emu.base_url


def wait_task(session, base, task_id, timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = session.get(f"{base}/tasks/{task_id}", timeout=10).json()
        if task["status"] != "new":
            return task
        time.sleep(0.05)
    return task


def test_e1_upload_never_writes_through_a_planted_temp_link(alice, home, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    os.symlink(victim, home / ".planted.txt.upload")  # the old temp file name
    alice.upload(M, "/global/homes/alice/planted.txt", b"uploaded")
    assert victim.read_text() == "original"
    assert (home / "planted.txt").read_bytes() == b"uploaded"
    assert stat.S_ISREG((home / "planted.txt").lstat().st_mode)


@pytest.mark.parametrize(
    "command", ["cat etc/passwd", "head etc/passwd", "ls etc/", "stat -L etc/passwd"]
)
def test_e2_relative_arguments_are_resolved_and_confined(alice, home, command):
    os.symlink("/etc", home / "etc")
    with pytest.raises(BadRequest, match="Permission denied"):
        alice.run_command(M, command)


def test_e2_relative_link_into_another_account_is_refused(emu, alice, home):
    (emu.root / "global/homes/bob/secret.txt").write_text("bob's")
    os.symlink(emu.root / "global/homes/bob", home / "bob")
    try:
        with pytest.raises(BadRequest, match="outside your directories"):
            alice.run_command(M, "cat bob/secret.txt")
    finally:
        (emu.root / "global/homes/bob/secret.txt").unlink()


@pytest.mark.parametrize(
    "command",
    [
        "wc --files0-from=list",
        "du --files0-from=list",
        "md5sum -c sums",
        "sha256sum --check sums",
    ],
)
def test_e3_file_list_options_are_refused(alice, home, command):
    (home / "list").write_bytes(b"/etc/passwd\0")
    (home / "sums").write_text("0" * 64 + "  /etc/passwd\n")
    with pytest.raises(BadRequest, match="not allowed here"):
        alice.run_command(M, command)


def test_e4_commands_that_change_the_host_are_refused(alice):
    name = socket.gethostname()  # the same name: harmless even where it would run
    with pytest.raises(BadRequest, match="takes no operand"):
        alice.run_command(M, f"hostname {name}")
    with pytest.raises(BadRequest, match="not allowed here"):
        alice.run_command(M, f"date -s '{time.strftime('%Y-%m-%d %H:%M:%S')}'")
    with pytest.raises(BadRequest, match="FORMAT"):
        alice.run_command(M, "date 010100002030")
    assert alice.run_command(M, "date +%Y").strip() == time.strftime("%Y")
    assert socket.gethostname() == name


@pytest.mark.parametrize(
    "directives",
    [
        "#SBATCH --output=../../bob/escaped-%j.out",
        "#SBATCH -J ../../bob/escaped\n#SBATCH --output=%x.out",
        "#SBATCH --outp=/global/homes/bob/escaped.out",
        "#SBATCH --err=/global/homes/bob/escaped.err",
    ],
)
def test_e5_job_output_stays_in_the_account(emu, alice, directives):
    script = f"#!/bin/bash\n{directives}\necho escaped\n"
    with pytest.raises(BadRequest, match="Permission denied|not allowed"):
        alice.submit_job(M, script)
    time.sleep(0.3)
    assert not [p for p in (emu.root / "global/homes/bob").iterdir() if "escaped" in p.name]


def test_e6_dot_names_are_not_folded_into_allowed_paths(emu, alice, home):
    hidden = emu.root / ".global/homes/alice"  # not alice's: her path is /global/homes/alice
    hidden.mkdir(parents=True, exist_ok=True)
    (hidden / "secret.txt").write_text("not alice's")
    os.symlink(hidden / "secret.txt", home / "dot-link")
    with pytest.raises(BadRequest, match="outside your directories"):
        alice.download(M, "/global/homes/alice/dot-link")


def _offline_config(tmp_path: Path, emu):
    """A config reusing the shared emulator's clients file, for apps served in this process."""
    secrets_dir = emu.credentials.credentials_file.parent
    return parse_args(
        [
            "serve",
            "--port",
            "8001",
            "--root",
            str(tmp_path / "fs"),
            "--state-dir",
            str(tmp_path / "state"),
            "--clients",
            str(secrets_dir / "clients.json"),
            "--static-token-file",
            str(secrets_dir / "static_token"),
            "--admin-token-file",
            str(secrets_dir / "admin_token"),
        ]
    )[1]


def _token_form(creds, audience: str, jti: str) -> dict:
    now = int(time.time())
    claims = {"iss": creds.client_id, "sub": creds.client_id, "aud": audience}
    claims |= {"iat": now, "exp": now + 60, "jti": jti}
    return {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(claims, creds.private_key, algorithm="RS256"),
    }


def test_e7_audience_is_fixed_by_configuration(tmp_path, emu):
    creds = emu.all_credentials["alice"]
    with TestClient(build_app(_offline_config(tmp_path, emu)), base_url="http://evil.test") as web:
        forged = _token_form(creds, "http://evil.test/oauth2/token", uuid.uuid4().hex)
        r = web.post("/oauth2/token", data=forged)
        assert r.status_code == 401 and "audience" in r.json()["error_description"].lower()
        right = _token_form(creds, "http://127.0.0.1:8001/oauth2/token", uuid.uuid4().hex)
        assert web.post("/oauth2/token", data=right).status_code == 200


def test_e7_replay_cache_survives_a_restart(tmp_path, emu):
    creds = emu.all_credentials["alice"]
    form = _token_form(creds, "http://127.0.0.1:8001/oauth2/token", uuid.uuid4().hex)
    config = _offline_config(tmp_path, emu)
    with TestClient(build_app(config), base_url="http://127.0.0.1:8001") as web:
        assert web.post("/oauth2/token", data=form).status_code == 200
    with TestClient(build_app(config), base_url="http://127.0.0.1:8001") as web:
        r = web.post("/oauth2/token", data=form)
    assert r.status_code == 401 and "replayed" in r.json()["error_description"]


def test_e8_odd_paths_get_api_error_bodies(alice, home, raw):
    session, base = raw
    os.symlink("loop", home / "loop")
    with pytest.raises(BadRequest, match="Too many levels of symbolic links"):
        alice.ls(M, "/global/homes/alice/loop/x")
    r = session.get(f"{base}/utilities/ls/{M}/global/homes/alice/a%00b", timeout=10)
    assert r.status_code == 200 and "NUL" in r.json()["error"] and r.json()["entries"] == []
    with pytest.raises(BadRequest, match="File name too long"):
        alice.download(M, "/global/homes/alice/" + "n" * 300)
    os.close(os.open(os.fsencode(home) + b"/bad-\xff\xfe.bin", os.O_CREAT | os.O_WRONLY))
    names = [e["name"] for e in alice.ls(M, "/global/homes/alice")]
    assert "bad-\\xff\\xfe.bin" in names


def test_e8_long_chdir_and_nul_command_finish_their_tasks(raw):
    session, base = raw
    script = "#!/bin/bash\n#SBATCH --chdir=/global/homes/alice/" + "d" * 5000 + "\ntrue\n"
    r = session.post(f"{base}/compute/jobs/{M}", data={"job": script, "isPath": "false"})
    assert r.status_code == 200
    task = wait_task(session, base, r.json()["task_id"])
    assert task["status"] == "completed"
    assert "File name too long" in json.loads(task["result"])["error"]
    r = session.post(f"{base}/utilities/command/{M}", data={"executable": "cat /etc/pa\0sswd"})
    assert r.status_code == 200
    task = wait_task(session, base, r.json()["task_id"])
    assert task["status"] == "completed" and "NUL" in json.loads(task["result"])["error"]


def test_e9_chunked_upload_is_cut_off_at_the_limit(emu, raw):
    session, base = raw
    sent = 0
    boundary = "sfxflowboundary"

    def body():
        nonlocal sent
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        yield head.encode()
        for _ in range(512):  # 32 MiB against the fixture's 1 MiB limit
            sent += 64 * 1024
            yield b"x" * (64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    try:
        r = session.put(
            f"{base}/utilities/upload/{M}/pscratch/alice/chunked.bin",
            data=body(),
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 413 and "File too large" in r.json()["error"]
    except requests.ConnectionError:
        pass  # the server answered 413 and closed while we were still sending
    assert sent < 16 * 1024 * 1024, f"{sent} bytes were read before the refusal"
    assert not (emu.root / "pscratch/alice/chunked.bin").exists()


def test_e9_concurrent_commands_are_bounded(raw):
    session, base = raw
    answers: list[int] = []

    def post():
        with requests.Session() as s:
            s.headers.update(session.headers)
            r = s.post(f"{base}/utilities/command/{M}", data={"executable": "sleep 1"})
            answers.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(200) <= 4 and answers.count(429) >= 6, answers


def reachable_dir(prefix: str) -> Path:
    """A fresh folder the job user can reach, unlike pytest's private tmp folders."""
    top = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    top.chmod(0o755)
    return top


def leaked_secrets(top: Path, client_for, **emulator) -> str:
    """Output of a job that tries to read every secret file of an emulator kept under ``top``."""
    users = {"carol": ["/global/homes/carol"]}
    with running_emulator(top, job_user="auto", users=users, **emulator) as emu:
        secret_files = [top / "secrets/admin_token", top / "secrets/clients.json"]
        secret_files += [p for p in (top / "state").iterdir() if p.is_file()]
        script = "#!/bin/bash\n#SBATCH -o leak.out\nid -u\n" + "".join(
            f"cat {p} 2>&1\n" for p in secret_files
        )
        with client_for(emu, "carol") as carol:
            job = carol.submit_job(M, script)
            assert carol.wait(M, job.jobid, poll=(0.05, 1.5, 0.5), timeout=60).finished
            return carol.download(M, "/global/homes/carol/leak.out").decode()


def assert_no_secret_in(out: str, top: Path) -> None:
    assert (top / "secrets/admin_token").read_text() not in out and "BEGIN" not in out
    assert out.splitlines()[0] != "0", out  # not root
    assert "Permission denied" in out


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root can run jobs as another user")


@ROOT_ONLY
def test_e10_jobs_cannot_read_the_emulators_secrets(client_for):
    top = reachable_dir("sfapi-e10-")
    try:
        assert_no_secret_in(leaked_secrets(top, client_for), top)
    finally:
        shutil.rmtree(top)


@ROOT_ONLY
@pytest.mark.skipif(not shutil.which("slurmctld"), reason="slurm-wlm is not installed")
def test_e10_slurm_jobs_cannot_read_the_emulators_secrets(client_for):
    top = reachable_dir("sfapi-e10-slurm-")
    cluster = slurm.SlurmCluster(top / "slurm", free_port(), free_port())
    try:
        slurm.up(cluster)
        out = leaked_secrets(
            top / "center", client_for, backend="slurm", slurm_var_dir=cluster.var_dir
        )
        assert_no_secret_in(out, top / "center")
    finally:
        slurm.down(cluster)
        shutil.rmtree(top)


def test_e6_the_extraction_program_is_confined_like_any_command(alice, home):
    (home / "r0001").mkdir()
    with pytest.raises(BadRequest, match="not allowed"):
        alice.run_command(M, "python -c 'print(1)'")  # only the listed program of python
    with pytest.raises(BadRequest, match="Permission denied"):
        alice.run_command(M, "python -m kernels.io.event_file /etc r0001/e.h5 --chunk 0 --event 0")
    with pytest.raises(BadRequest, match="Permission denied"):
        alice.run_command(M, "python -m kernels.io.event_file r0001 r0001/e.h5 --out=/etc/x")
    with pytest.raises(BadRequest, match=r"alice/r0001: run has no chunk 0 \(0 chunks"):  # it ran
        alice.run_command(M, "python -m kernels.io.event_file r0001 r0001/e.h5 --chunk 0 --event 0")
    with pytest.raises(BadRequest, match="not allowed here"):
        alice.run_command(M, "rm -r r0001")
    alice.run_command(M, "rm -f r0001/absent.h5")
    assert (home / "r0001").is_dir()
