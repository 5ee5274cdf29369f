"""Run batch jobs as local processes with Slurm's states, time limits, signals and cancellation.

One scheduler thread starts pending jobs (at most ``max_running`` at once), reaps finished ones,
enforces time limits (``TIMEOUT``), delivers ``--signal`` warnings, and escalates cancellation
from SIGTERM to SIGKILL after ``kill_wait_s`` — so a job may trap SIGTERM to write a checkpoint.
Jobs inherit the server's environment with the server's Python first on ``PATH``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .batch_script import BatchOptions, expand_job_id
from .filesystem import open_in_dir
from .job_user import JobUser
from .jobs import Job

TICK_S = 0.05


def job_environment(job: Job) -> dict[str, str]:
    """The server's environment plus the SLURM_* variables a batch script expects."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(
        SLURM_JOB_ID=job.jobid,
        SLURM_JOBID=job.jobid,
        SLURM_JOB_NAME=job.name,
        SLURM_SUBMIT_DIR=str(job.host_workdir),
        SLURM_JOB_NUM_NODES=str(job.nodes),
        SLURM_NNODES=str(job.nodes),
        SLURM_NTASKS=str(job.ntasks),
        SLURM_CPUS_ON_NODE=str(job.ntasks),
        SLURM_JOB_USER=job.user,
        SLURM_CLUSTER_NAME="perlmutter",
        SLURM_JOB_PARTITION="regular",
    )
    return env


@dataclass
class _Run:
    job: Job
    script: Path
    args: list[str]
    options: BatchOptions
    output: str
    error: str | None
    proc: subprocess.Popen | None = None
    kill_at: float | None = None
    end_state: str | None = None
    warned: bool = False
    files: list[int] = field(default_factory=list)


class LocalBackend:
    """Job scripts as child processes of the server.

    Parameters
    ----------
    state_dir : Path
        Where job scripts are kept (``jobs/<id>.sh``).
    kill_wait_s : float
        Seconds between SIGTERM and SIGKILL on cancel or timeout (Slurm's KillWait).
    max_running : int
        Jobs running at once; the rest stay PENDING (reason ``Resources``).
    job_user : JobUser
        Whom the scripts run as (see :mod:`.job_user`).
    """

    def __init__(
        self,
        state_dir: Path,
        kill_wait_s: float = 5.0,
        max_running: int = 8,
        job_user: JobUser | None = None,
    ):
        self._dir = state_dir / "jobs"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._kill_wait_s = kill_wait_s
        self._max_running = max_running
        # the job user must reach its scripts and the server's Python too
        self._job_user = (
            (job_user or JobUser(None)).reaching(self._dir).reaching(Path(sys.executable).parent)
        )
        # Ids differ from a previous run's so a stale id held by a client never names a new job.
        self._ids = itertools.count(int(time.time()) % 100000 * 10 + 1)
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)
        self._thread.start()

    def submit(
        self,
        job: Job,
        script_text: str,
        options: BatchOptions,
        args: list[str],
        output: str | None,
        error: str | None,
    ) -> str:
        """Queue ``job`` (its ``jobid`` is set here) and return the job id.

        ``output`` and ``error`` are confined host path patterns (``%j`` still to expand).
        """
        job.jobid = str(next(self._ids))
        script = self._dir / f"{job.jobid}.sh"
        script.write_text(script_text)
        script.chmod(0o700)
        self._job_user.give(script)
        run = _Run(job, script, args, options, output or "slurm-%j.out", error)
        with self._lock:
            self._runs[job.jobid] = run
        return job.jobid

    def refresh(self, jobs: list[Job]) -> None:
        """Nothing to do: the scheduler thread keeps the jobs' states current."""

    def cancel(self, job: Job) -> None:
        """scancel: a pending job ends at once, a running one gets SIGTERM then SIGKILL."""
        with self._lock:
            run = self._runs.get(job.jobid)
            if run is None or job.finished:
                return
            if run.proc is None:
                job.state, job.end_time = "CANCELLED", time.time()
                del self._runs[job.jobid]
            else:
                self._terminate(run, "CANCELLED")

    def close(self) -> None:
        """Stop scheduling and kill every job still running."""
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for run in self._runs.values():
                if run.proc is not None and run.proc.poll() is None:
                    self._signal(run, signal.SIGKILL)
                    run.proc.wait()

    def _signal(self, run: _Run, sig: int) -> None:
        if run.proc is None:
            return
        try:
            os.killpg(run.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _terminate(self, run: _Run, end_state: str) -> None:
        run.end_state = end_state
        run.job.state = end_state if end_state == "CANCELLED" else run.job.state
        run.kill_at = time.time() + self._kill_wait_s
        self._signal(run, signal.SIGTERM)

    def _start(self, run: _Run) -> None:
        job = run.job
        try:
            run.files = []
            out = self._open_output(run.output, job)
            run.files = [out]
            err = self._open_output(run.error, job) if run.error else subprocess.STDOUT
            run.files += [err] if run.error else []
            run.proc = subprocess.Popen(
                [str(run.script), *run.args],
                cwd=job.host_workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=job_environment(job),
                start_new_session=True,
                **self._job_user.popen_kwargs(),
            )
        except OSError as exc:
            for fd in run.files:
                os.close(fd)
            job.state, job.reason, job.exit_code = "FAILED", f"launch failed: {exc.strerror}", "1:0"
            job.start_time = job.end_time = time.time()
            del self._runs[job.jobid]
            return
        job.state, job.reason, job.start_time = "RUNNING", "None", time.time()

    def _open_output(self, pattern: str, job: Job) -> int:
        """The job's output file, appended to, never through a symlink at its name."""
        path = Path(expand_job_id(pattern, job.jobid))
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        fd = open_in_dir(path.parent, path.name, flags, 0o644)
        self._job_user.give_fd(fd)
        return fd

    def _reap(self, run: _Run, rc: int) -> None:
        job = run.job
        for fd in run.files:
            os.close(fd)
        job.end_time = time.time()
        job.exit_code = f"{rc}:0" if rc >= 0 else f"0:{-rc}"
        if run.end_state is not None:
            job.state = run.end_state
        else:
            job.state = "COMPLETED" if rc == 0 else "FAILED"
            job.reason = "None" if rc == 0 else "NonZeroExitCode"
        del self._runs[job.jobid]

    def _tick(self) -> None:
        now = time.time()
        with self._lock:
            running = [(r, r.proc) for r in self._runs.values() if r.proc is not None]
            for run, proc in running:
                rc = proc.poll()
                if rc is not None:
                    self._reap(run, rc)
                    continue
                limit = run.job.time_limit_s
                spec = run.options.signal_spec
                ran = now - (run.job.start_time or now)
                if limit is not None and spec and not run.warned and ran >= limit - spec[1]:
                    run.warned = True
                    self._signal(run, spec[0])
                if limit is not None and run.end_state is None and ran >= limit:
                    self._terminate(run, "TIMEOUT")
                if run.kill_at is not None and now >= run.kill_at:
                    self._signal(run, signal.SIGKILL)
                    run.kill_at = None
            free = self._max_running - sum(1 for r in self._runs.values() if r.proc is not None)
            for run in [r for r in self._runs.values() if r.proc is None]:
                if free <= 0:
                    run.job.reason = "Resources"
                    continue
                self._start(run)
                free -= 1

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            self._tick()
