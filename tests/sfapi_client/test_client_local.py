"""Our client against the running emulator, local backend: status, jobs, files, commands."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid

import pytest
import requests

from sfapi_client import BadRequest, FacilityUnavailable, JobFailed, NotFound

M = "perlmutter"
POLL = (0.05, 1.5, 0.5)


def test_status_and_planned_outage(emu, alice):
    assert alice.status(M)["status"] == "active"
    assert alice.require_available(M)["name"] == M
    now = dt.datetime.now(dt.UTC)
    emu.admin.schedule_outage(
        M, now + dt.timedelta(hours=2), now + dt.timedelta(hours=3), "upgrade"
    )
    planned = alice.outages(M)
    assert [(o["name"], o["description"], o["status"]) for o in planned] == [
        (M, "upgrade", "Planned")
    ]
    assert alice.status(M)["status"] == "active"  # planned, not yet current


def test_current_outage_makes_system_unavailable(emu, alice):
    now = dt.datetime.now(dt.UTC)
    emu.admin.schedule_outage(
        M, now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1), "power"
    )
    assert alice.status(M)["status"] == "unavailable"
    with pytest.raises(FacilityUnavailable, match="power"):
        alice.require_available(M)
    assert [o["status"] for o in alice.outages(M, planned=False)] == ["Active"]
    assert [o["description"] for o in alice.outages(M)] == ["power"]  # not over: still "planned"
    assert alice.status("dtns")["status"] == "active"


def test_set_status_degraded_still_usable_down_is_not(emu, alice):
    emu.admin.set_status(M, "degraded", ["slow filesystem"])
    assert alice.require_available(M)["notes"] == ["slow filesystem"]
    emu.admin.set_status(M, "unavailable", ["maintenance"])
    with pytest.raises(FacilityUnavailable):
        alice.require_available(M)


def test_job_runs_with_venv_python_in_its_workdir(emu, alice):
    script = (
        "#!/bin/bash\n#SBATCH --job-name=pyjob\n#SBATCH --output=py-%j.out\n"
        "#SBATCH --chdir=/pscratch/alice\n"
        "python -c 'import sys, os; print(sys.executable); print(os.getcwd())'\n"
        "echo job=$SLURM_JOB_ID\n"
    )
    job = alice.submit_job(M, script)
    done = alice.wait(M, job.jobid, poll=POLL, timeout=30)
    assert (done.state, done.name, done.exit_code) == ("COMPLETED", "pyjob", "0:0")
    out = (emu.root / f"pscratch/alice/py-{job.jobid}.out").read_text().splitlines()
    assert out == [sys.executable, str((emu.root / "pscratch/alice").resolve()), f"job={job.jobid}"]
    assert (
        alice.download(M, f"/pscratch/alice/py-{job.jobid}.out")
        .decode()
        .endswith(f"job={job.jobid}\n")
    )


def test_failed_job_raises_job_failed_with_exit_code(alice):
    job = alice.submit_job(M, "#!/bin/bash\nexit 3\n")
    with pytest.raises(JobFailed) as info:
        alice.wait(M, job.jobid, poll=POLL, timeout=30, raise_on_failure=True)
    assert (info.value.job.state, info.value.job.exit_code) == ("FAILED", "3:0")


def test_wait_until_running_then_cancel_lets_job_checkpoint(emu, alice):
    script = (
        "#!/bin/bash\n#SBATCH --output=ckpt.out\n"
        "trap 'echo checkpoint > ckpt.txt; exit 0' TERM\n"
        "echo started\nwhile true; do sleep 0.1; done\n"
    )
    job = alice.submit_job(M, script)
    assert alice.wait(M, job.jobid, until="running", poll=POLL, timeout=30).state == "RUNNING"
    time.sleep(0.3)  # let bash install its trap
    alice.cancel(M, job.jobid)
    final = alice.wait(M, job.jobid, poll=POLL, timeout=30)
    assert final.state == "CANCELLED"
    home = emu.root / "global/homes/alice"
    deadline = time.time() + 5
    while not (home / "ckpt.txt").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (home / "ckpt.txt").read_text() == "checkpoint\n"


def test_cancel_escalates_to_sigkill_when_job_ignores_sigterm(emu, alice):
    script = "#!/bin/bash\ntrap '' TERM\nwhile true; do sleep 0.1; done\n"
    job = alice.submit_job(M, script)
    alice.wait(M, job.jobid, until="running", poll=POLL, timeout=30)
    time.sleep(0.3)
    alice.cancel(M, job.jobid)
    deadline = time.time() + 10  # kill_wait is 1 s in the fixture
    while time.time() < deadline:
        row = alice.job(M, job.jobid).row
        if row.get("end", "Unknown") != "Unknown":
            break
        time.sleep(0.1)
    assert alice.job(M, job.jobid).exit_code == "0:9"


def test_time_limit_gives_timeout_and_signal_warning(emu, alice):
    script = (
        "#!/bin/bash\n#SBATCH --time=0:2\n#SBATCH --signal=USR1@1\n#SBATCH -o warn.out\n"
        "trap 'echo warned' USR1\nfor i in $(seq 100); do sleep 0.1; done\n"
    )
    job = alice.submit_job(M, script)
    final = alice.wait(M, job.jobid, poll=POLL, timeout=30)
    assert final.state == "TIMEOUT"
    assert "warned" in (emu.root / "global/homes/alice/warn.out").read_text()


def test_squeue_empty_after_end_but_sacct_keeps_job(alice):
    job = alice.submit_job(M, "#!/bin/bash\ntrue\n")
    alice.wait(M, job.jobid, poll=POLL, timeout=30)
    rows = alice._rows(M, False, [f"jobid={job.jobid}"])
    assert rows == []
    (row,) = alice._rows(M, True, [f"jobid={job.jobid}"])
    assert row["state"] == "COMPLETED" and all(isinstance(v, str) for v in row.values())


def test_submit_with_same_key_returns_the_same_job(alice):
    script = "#!/bin/bash\n#SBATCH -J keyed\nsleep 0.2\n"
    first = alice.submit_job(M, script, key="run-0042-try1")
    again = alice.submit_job(M, script, key="run-0042-try1")
    assert again.jobid == first.jobid and again.key == "run-0042-try1"
    other = alice.submit_job(M, script, key="run-0042-try2")
    assert other.jobid != first.jobid


def test_keys_longer_than_a_comment_allows_stay_idempotent_and_distinct(alice):
    script = "#!/bin/bash\n#SBATCH -J long-key\ntrue\n"
    prefix = f"exp-{uuid.uuid4().hex}." + "d" * 64 + ".trial"  # 64-char names add up
    key, sibling = f"{prefix}.merge.aaaaaaaaaaaa", f"{prefix}.merge.bbbbbbbbbbbb"
    assert len(key) > 120
    first = alice.submit_job(M, script, key=key)
    assert alice.find_job(M, key).jobid == first.jobid
    assert alice.submit_job(M, script, key=key).jobid == first.jobid
    assert alice.submit_job(M, script, key=sibling).jobid != first.jobid
    assert len(first.key) <= 100 and first.key.startswith(key[:80])


def test_files_upload_ls_download_and_command(alice):
    payload = bytes(range(256)) * 10
    alice.upload(M, "/pscratch/alice/blob.bin", payload)
    assert alice.download(M, "/pscratch/alice/blob.bin") == payload
    names = [e["name"] for e in alice.ls(M, "/pscratch/alice")]
    assert names[:2] == [".", ".."] and "blob.bin" in names
    (entry,) = alice.ls(M, "/pscratch/alice/blob.bin")
    assert entry["size"] == len(payload) and entry["perms"].startswith("-")
    assert alice.run_command(M, "wc -c /pscratch/alice/blob.bin").split()[0] == str(len(payload))
    with pytest.raises(NotFound, match="No such file"):
        alice.ls(M, "/pscratch/alice/nope")
    with pytest.raises(BadRequest, match="not allowed"):
        alice.run_command(M, "rm -rf /")


def test_users_are_confined_to_their_files_and_jobs(alice, bob):
    job = alice.submit_job(M, "#!/bin/bash\nsleep 0.2\n")
    with pytest.raises(NotFound):
        bob.job(M, job.jobid)
    with pytest.raises(NotFound):
        bob.cancel(M, job.jobid)
    assert alice.job(M, job.jobid).jobid == job.jobid
    with pytest.raises(BadRequest, match="Permission denied"):
        bob.ls(M, "/global/homes/alice")
    with pytest.raises(BadRequest, match="Permission denied"):
        bob.upload(M, "/pscratch/alice/evil.txt", b"x")
    with pytest.raises(BadRequest, match="Permission denied"):
        bob.submit_job(M, "#!/bin/bash\n#SBATCH --chdir=/pscratch/alice\ntrue\n")


def test_submit_script_by_path_with_args_runs_in_its_directory(emu, alice):
    with pytest.raises(NotFound, match="No such file"):  # no parent directory yet
        alice.upload(M, "/pscratch/alice/jobs/echo.sh", b"#!/bin/bash\n")
    alice.run_command(M, "mkdir -p /pscratch/alice/jobs")
    alice.upload(
        M, "/pscratch/alice/jobs/echo.sh", b'#!/bin/bash\n#SBATCH -o args.out\necho "$@"; pwd\n'
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.all_credentials['alice'].static_token}"
    r = session.post(
        f"{emu.base_url}/compute/jobs/{M}",
        timeout=10,
        data={"job": "/pscratch/alice/jobs/echo.sh", "isPath": "true", "args": ["a", "b c"]},
    )
    result = json.loads(
        session.get(f"{emu.base_url}/tasks/{r.json()['task_id']}", timeout=10).json()["result"]
    )
    done = alice.wait(M, result["jobid"], poll=POLL, timeout=30)
    assert (done.state, done.name) == ("COMPLETED", "echo.sh")
    out = (emu.root / "pscratch/alice/jobs/args.out").read_text().splitlines()
    assert out == ["a b c", str((emu.root / "pscratch/alice/jobs").resolve())]
