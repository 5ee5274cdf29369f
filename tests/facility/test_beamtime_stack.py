"""The beamtime stack hands its jobs an unprivileged user where the machine allows it."""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from facility.beamtime_stack import private_sqlite_url
from facility.sfapi.job_user import JobUser
from kernels.resultsdb import ResultsDB

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can hand folders to another user"
)
NOBODY = pwd.getpwnam("nobody")
SYSTEM_PYTHON = "/usr/bin/python3"  # a Python `nobody` can run, unlike a venv from /root/.pyenv


@pytest.fixture
def reachable():
    """A fresh folder others may traverse, unlike pytest's private tmp folders."""
    top = Path(tempfile.mkdtemp(prefix="sfx-jobuser-", dir="/tmp"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top)


def test_a_python_under_a_private_folder_means_jobs_run_as_the_server(reachable, monkeypatch):
    private = reachable / "home"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    interpreter = private / "bin" / "python3"
    interpreter.touch()
    (reachable / "venv").mkdir()
    (reachable / "venv" / "python").symlink_to(interpreter)
    monkeypatch.setattr(sys, "executable", str(reachable / "venv" / "python"))
    monkeypatch.setattr(sys, "base_prefix", str(reachable))
    assert JobUser(NOBODY).reaching_python().account is None

    private.chmod(0o755)
    assert JobUser(NOBODY).reaching_python().account is NOBODY


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason=f"no {SYSTEM_PYTHON}")
def test_the_sqlite_results_db_stays_writable_by_the_job_user_after_we_write_it(reachable):
    url = private_sqlite_url(reachable / "resultsdb", JobUser(NOBODY))
    db = ResultsDB(url)  # as root, the way Airflow's side first opens it, and kept open
    db.ensure_run("exp", "r0001")
    path = Path(url.removeprefix("sqlite:///"))
    for leftover in path.parent.iterdir():  # -wal/-shm if a connection is still open
        assert leftover.stat().st_uid == NOBODY.pw_uid, leftover
    job = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE job_wrote (x)'); "
            "c.execute('INSERT INTO job_wrote VALUES (1)'); c.commit()",
            str(path),
        ],
        user=NOBODY.pw_uid,
        group=NOBODY.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
    )
    assert job.returncode == 0, job.stderr
    with sqlite3.connect(path) as ours:  # and we can still write after the job did
        ours.execute("INSERT INTO job_wrote VALUES (2)")
        assert [r[0] for r in ours.execute("SELECT x FROM job_wrote ORDER BY x")] == [1, 2]
    db.ensure_run("exp", "r0002")
    db.close()
    for made in path.parent.iterdir():
        assert made.stat().st_uid == NOBODY.pw_uid, made
