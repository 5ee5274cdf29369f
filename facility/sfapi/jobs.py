"""Batch jobs as the emulator tracks them, and their squeue/sacct rows in the real API's shape.

Every value in a row is a string, as the real API returns it; states are full Slurm names.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "PREEMPTED",
    }
)
PARTITION = "regular"
ACCOUNT = "m0000"


def _ts(t: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else "Unknown"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "UNLIMITED"
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


@dataclass
class Job:
    """One submitted job: who owns it, where it runs, and its latest known state."""

    jobid: str
    machine: str
    user: str
    uid: int
    name: str
    comment: str
    workdir: str
    host_workdir: Path
    time_limit_s: int | None = None
    nodes: int = 1
    ntasks: int = 1
    submit_time: float = field(default_factory=time.time)
    start_time: float | None = None
    end_time: float | None = None
    state: str = "PENDING"
    reason: str = "None"
    exit_code: str = "0:0"

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def elapsed_s(self) -> float:
        if self.start_time is None:
            return 0.0
        return (self.end_time or time.time()) - self.start_time


def squeue_row(job: Job) -> dict[str, str]:
    """The job as ``GET /compute/jobs/{machine}?sacct=false`` lists it."""
    short = {"PENDING": "PD", "RUNNING": "R", "COMPLETING": "CG"}.get(job.state, job.state[:2])
    nodelist = "nid000001" if job.start_time else ""
    return {
        "account": ACCOUNT,
        "jobid": job.jobid,
        "name": job.name,
        "comment": job.comment,
        "user": job.user,
        "uid": str(job.uid),
        "partition": PARTITION,
        "qos": "regular",
        "state": job.state,
        "st": short,
        "reason": job.reason,
        "time_limit": _duration(job.time_limit_s),
        "time": _duration(job.elapsed_s()),
        "time_left": _duration(
            None if job.time_limit_s is None else max(0.0, job.time_limit_s - job.elapsed_s())
        ),
        "nodes": str(job.nodes),
        "cpus": str(job.ntasks),
        "req_nodes": "",
        "nodelist": nodelist,
        "nodelist(reason)": nodelist or f"({job.reason})",
        "submit_time": _ts(job.submit_time),
        "start_time": _ts(job.start_time) if job.start_time else "N/A",
        "end_time": _ts(job.end_time) if job.end_time else "N/A",
        "work_dir": job.workdir,
        "command": str(PurePosixPath(job.workdir, job.name)),
        "priority": "0.00000",
        "array_job_id": job.jobid,
        "array_task_id": "N/A",
        "dependency": "(null)",
        "exec_host": "n/a",
    }


def sacct_row(job: Job) -> dict[str, str]:
    """The job as ``GET /compute/jobs/{machine}?sacct=true`` lists it."""
    return {
        "account": ACCOUNT,
        "jobid": job.jobid,
        "jobidraw": job.jobid,
        "jobname": job.name,
        "comment": job.comment,
        "user": job.user,
        "uid": str(job.uid),
        "partition": PARTITION,
        "qos": "regular",
        "cluster": "perlmutter",
        "state": job.state,
        "reason": job.reason,
        "exitcode": job.exit_code,
        "derivedexitcode": "0:0",
        "submit": _ts(job.submit_time),
        "start": _ts(job.start_time),
        "end": _ts(job.end_time),
        "elapsed": _duration(job.elapsed_s()),
        "elapsedraw": str(int(job.elapsed_s())),
        "timelimit": _duration(job.time_limit_s),
        "timelimitraw": "UNLIMITED" if job.time_limit_s is None else str(job.time_limit_s // 60),
        "nnodes": str(job.nodes),
        "ntasks": str(job.ntasks),
        "ncpus": str(job.ntasks),
        "nodelist": "nid000001" if job.start_time else "None assigned",
        "workdir": job.workdir,
    }


class JobRegistry:
    """All jobs the emulator has accepted, by id (a real cluster's records are per user too)."""

    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.jobid] = job

    def get(self, jobid: str) -> Job | None:
        return self._jobs.get(jobid)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())
