"""The emulator's slurm backend: jobs really run under slurmctld/slurmd started by the fixture."""

from __future__ import annotations

import subprocess
import time

import pytest

from facility.slurm import slurm_env
from sfapi_client import BadRequest, JobFailed

M = "perlmutter"
POLL = (0.2, 1.5, 1.0)


def test_slurm_job_completes_and_stays_visible_in_sacct(slurm_emulator, slurm_cluster, client_for):
    with client_for(slurm_emulator) as alice:
        script = (
            "#!/bin/bash\n#SBATCH --job-name=slurmjob\n#SBATCH --output=slurm-test-%j.out\n"
            "#SBATCH --chdir=/pscratch/alice\n"
            "python -c 'print(\"ran\", 6 * 7)'\necho id=$SLURM_JOB_ID\n"
        )
        job = alice.submit_job(M, script)
        squeue = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i %k"],
            env=slurm_env(slurm_cluster),
            capture_output=True,
            text=True,
        ).stdout
        assert f"{job.jobid} sfxflow-key:{job.key}" in squeue  # really queued in Slurm
        done = alice.wait(M, job.jobid, poll=POLL, timeout=60)
        assert (done.state, done.exit_code) == ("COMPLETED", "0:0")
        out = slurm_emulator.root / f"pscratch/alice/slurm-test-{job.jobid}.out"
        assert out.read_text() == f"ran 42\nid={job.jobid}\n"
        (row,) = alice._rows(M, True, [f"jobid={job.jobid}"])
        assert (row["state"], row["jobname"], row["comment"]) == (
            "COMPLETED",
            "slurmjob",
            f"sfxflow-key:{job.key}",
        )
        failed = alice.submit_job(M, "#!/bin/bash\nexit 4\n")
        assert alice.wait(M, failed.jobid, poll=POLL, timeout=60).exit_code == "4:0"


def test_slurm_cancel_delivers_sigterm_for_a_checkpoint(slurm_emulator, client_for):
    with client_for(slurm_emulator) as alice:
        script = (
            "#!/bin/bash\n#SBATCH --output=/pscratch/alice/cancel-%j.out\n"
            "trap 'echo checkpoint; exit 0' TERM\necho started\n"
            "while true; do sleep 0.1; done\n"
        )
        job = alice.submit_job(M, script, key="slurm-cancel")
        assert alice.wait(M, job.jobid, until="running", poll=POLL, timeout=60).state == "RUNNING"
        out = slurm_emulator.root / f"pscratch/alice/cancel-{job.jobid}.out"
        deadline = time.time() + 10
        while "started" not in (out.read_text() if out.exists() else "") and time.time() < deadline:
            time.sleep(0.1)
        alice.cancel(M, job.jobid)
        assert alice.wait(M, job.jobid, poll=POLL, timeout=60).state == "CANCELLED"
        deadline = time.time() + 10
        while "checkpoint" not in out.read_text() and time.time() < deadline:
            time.sleep(0.1)
        lines = out.read_text().splitlines()  # slurmstepd adds its own CANCELLED notice
        assert lines[0] == "started" and lines[-1] == "checkpoint"
        assert alice.submit_job(M, script, key="slurm-cancel").jobid == job.jobid


def test_slurm_refuses_a_malformed_script(slurm_emulator, client_for):
    with client_for(slurm_emulator) as alice, pytest.raises(BadRequest, match="Invalid time limit"):
        alice.submit_job(M, "#!/bin/bash\n#SBATCH --time=whenever\ntrue\n")


def test_official_client_submits_waits_and_cancels_on_slurm(slurm_emulator, run_official):
    report = run_official(slurm_emulator, "jobs")
    assert (report["final"], report["sacct_state"], report["sacct_name"]) == (
        "COMPLETED",
        "COMPLETED",
        "official",
    )
    assert report["cancelled"] == "CANCELLED"
    assert "Invalid time limit" in report["bad_script"]


def test_wait_ends_on_node_fail(slurm_emulator, slurm_cluster, client_for):
    """A real NODE_FAIL (node set DOWN under a running job): our wait returns, unlike the official one."""
    env = slurm_env(slurm_cluster)
    with client_for(slurm_emulator) as alice:
        job = alice.submit_job(M, "#!/bin/bash\n#SBATCH --no-requeue\nsleep 100\n")
        alice.wait(M, job.jobid, until="running", poll=POLL, timeout=60)
        try:
            subprocess.run(
                ["scontrol", "update", "nodename=localhost", "state=down", "reason=sfapi-test"],
                env=env,
                check=True,
                capture_output=True,
            )
            with pytest.raises(JobFailed) as info:
                alice.wait(M, job.jobid, poll=POLL, timeout=30, raise_on_failure=True)
            assert info.value.job.state == "NODE_FAIL"
        finally:
            subprocess.run(
                ["scontrol", "update", "nodename=localhost", "state=resume"],
                env=env,
                capture_output=True,
            )
            deadline = time.time() + 20
            while (
                time.time() < deadline
                and "idle"
                not in subprocess.run(
                    ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True
                ).stdout
            ):
                time.sleep(0.2)
