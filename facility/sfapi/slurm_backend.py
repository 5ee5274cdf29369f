"""Run batch jobs on the real local Slurm cluster of :mod:`facility.slurm`.

Jobs are submitted with ``sbatch``; their state is read from ``squeue -t all`` while Slurm still
holds them and from the job-completion log (``sacct --completion``) once they are purged, so a job
stays visible after it ends. Reads are rate-limited so API polling never floods slurmctld.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from facility.slurm import SlurmCluster, slurm_env

from .batch_script import BatchOptions, parse_time_limit
from .job_user import JobUser
from .jobs import Job

MIN_REFRESH_S = 0.25
_SQUEUE_FORMAT = "%i|%T|%r|%S|%e|%l"
_SACCT_FIELDS = "jobid,state,exitcode,start,end"


class SlurmCommandError(RuntimeError):
    """A Slurm command failed; the message is its stderr (e.g. ``sbatch: error: ...``)."""


def _epoch(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        return None


def _normal_state(state: str) -> str:
    """``CANCELLED by 0`` → ``CANCELLED`` (the client wants bare state names)."""
    return state.split()[0].rstrip("+") if state else state


class SlurmBackend:
    """Jobs on a running :class:`facility.slurm.SlurmCluster`.

    Parameters
    ----------
    cluster : SlurmCluster
    state_dir : Path
        Where job scripts are written before ``sbatch`` reads them.
    job_user : JobUser
        Whom the jobs run as (``sbatch --uid``); the server's user unless slurmd's spool
        directory is reachable by that user too.
    """

    def __init__(self, cluster: SlurmCluster, state_dir: Path, job_user: JobUser | None = None):
        self._job_user = (job_user or JobUser(None)).reaching(cluster.var_dir / "spool")
        self._env = slurm_env(cluster)
        self._env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self._env.get("PATH", "")
        self._dir = state_dir / "jobs"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._last_refresh = 0.0
        self._lock = threading.Lock()

    def _run(self, *cmd: str) -> str:
        proc = subprocess.run(cmd, env=self._env, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise SlurmCommandError(proc.stderr.strip() or f"{cmd[0]} exited {proc.returncode}")
        return proc.stdout

    def submit(
        self,
        job: Job,
        script_text: str,
        options: BatchOptions,
        args: list[str],
        output: str | None,
        error: str | None,
    ) -> str:
        """``sbatch`` the script in ``job.host_workdir``; sets and returns ``job.jobid``."""
        script = self._dir / f"{time.time_ns()}.sh"
        script.write_text(script_text)
        cmd = ["sbatch", "--parsable", f"--chdir={job.host_workdir}", f"--job-name={job.name}"]
        cmd += self._job_user.sbatch_options()
        cmd += [f"--output={output}"] if output else []
        cmd += [f"--error={error}"] if error else []
        try:
            out = self._run(*cmd, str(script), *args)
        finally:
            script.unlink(missing_ok=True)
        job.jobid = out.strip().split(";")[0]
        return job.jobid

    def refresh(self, jobs: list[Job]) -> None:
        """Update the unfinished ``jobs`` from squeue, then from the completion log."""
        with self._lock:
            if time.monotonic() - self._last_refresh < MIN_REFRESH_S:
                return
            self._last_refresh = time.monotonic()
            pending = {j.jobid: j for j in jobs if not j.finished}
            if not pending:
                return
            seen = self._from_squeue(pending)
            gone = [i for i, j in pending.items() if i not in seen or j.finished]
            if gone:
                self._from_jobcomp({i: pending[i] for i in gone})

    def _from_squeue(self, jobs: dict[str, Job]) -> set[str]:
        """Update ``jobs`` from squeue; returns the ids squeue still knows."""
        seen: set[str] = set()
        try:
            out = self._run("squeue", "-h", "-t", "all", "-j", ",".join(jobs), "-o", _SQUEUE_FORMAT)
        except SlurmCommandError:  # every id already purged: squeue refuses the list
            return seen
        for line in out.splitlines():
            jobid, state, reason, start, end, limit = line.split("|")
            job = jobs.get(jobid)
            if job is None:
                continue
            seen.add(jobid)
            job.state, job.reason = _normal_state(state), reason
            job.start_time = _epoch(start) or job.start_time
            job.end_time = _epoch(end) if job.finished else None
            try:
                job.time_limit_s = parse_time_limit(limit) if limit else job.time_limit_s
            except ValueError:
                pass
        return seen

    def _from_jobcomp(self, jobs: dict[str, Job]) -> None:
        out = self._run(
            "sacct", "-c", "-n", "-P", "-j", ",".join(jobs), f"--format={_SACCT_FIELDS}"
        )
        for line in out.splitlines():
            jobid, state, exitcode, start, end = line.split("|")
            job = jobs.get(jobid)
            if job is not None:
                job.state, job.exit_code = _normal_state(state), exitcode
                job.start_time = _epoch(start) or job.start_time
                job.end_time = _epoch(end) or job.end_time

    def cancel(self, job: Job) -> None:
        """``scancel`` (Slurm sends SIGTERM, then SIGKILL after KillWait)."""
        self._run("scancel", job.jobid)
        self._last_refresh = 0.0

    def close(self) -> None:
        """Nothing held: Slurm keeps running the jobs."""
