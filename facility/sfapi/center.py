"""What the emulated center does for a request, independent of HTTP: jobs, files, commands.

Every method takes the calling :class:`~facility.sfapi.config.Account` and confines what it
touches to that account's jobs and paths (:mod:`.filesystem`, :mod:`.commands`).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from . import files
from .batch_script import BatchScriptError, expand_names, parse_batch_script
from .commands import COMMAND_TIMEOUT_S, CommandError, command_argv
from .config import COMPUTE_MACHINES, MACHINES, Account, EmulatorConfig
from .filesystem import PathError, normalize, open_confined, resolve
from .job_user import JobUser
from .jobs import Job, JobRegistry, sacct_row, squeue_row
from .local_backend import LocalBackend

DEFAULT_OUTPUT = "slurm-%j.out"
MAX_SCRIPT_BYTES = 1024 * 1024


class RequestError(Exception):
    """The request cannot be carried out; the message is what the API reports."""


def make_backend(config: EmulatorConfig, job_user: JobUser):
    """The job backend named by ``config.backend``."""
    if config.backend == "local":
        return LocalBackend(config.state_dir, config.kill_wait_s, config.max_running_jobs, job_user)
    if config.backend == "slurm":
        from facility.slurm import SlurmCluster

        from .slurm_backend import SlurmBackend

        cluster = SlurmCluster(config.slurm_var_dir or Path("var/slurm").resolve())
        return SlurmBackend(cluster, config.state_dir, job_user)
    raise ValueError(f"unknown backend {config.backend!r}; use local or slurm")


def _home(account: Account) -> str:
    return account.paths[0]


def parse_kwargs(kwargs: list[str]) -> dict[str, set[str]]:
    """``["jobid=1,2", "user=alice"]`` → ``{"jobid": {"1", "2"}, "user": {"alice"}}``."""
    filters: dict[str, set[str]] = {}
    for item in kwargs:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise RequestError(f"invalid kwargs entry {item!r}: expected key=value")
        filters.setdefault(key.strip(), set()).update(v for v in value.split(",") if v)
    return filters


class Center:
    """The emulated HPC center: a job backend, a job registry and machine filesystems."""

    def __init__(self, config: EmulatorConfig, backend=None):
        self.config = config
        self.job_user = JobUser.choose(config.job_user, config.root)
        self.backend = backend or make_backend(config, self.job_user)
        self.jobs = JobRegistry()

    def root(self, machine: str) -> Path:
        return self.config.machine_root(machine)

    def ensure_homes(self, accounts: list[Account]) -> None:
        """Create every account's directories on every machine (the first is its home)."""
        for machine in MACHINES:
            for account in accounts:
                for path in account.paths:
                    host = resolve(self.root(machine), account, path)
                    host.mkdir(parents=True, exist_ok=True)
                    self.job_user.give(host)

    # --- jobs -------------------------------------------------------------------------------

    def _output(self, root: Path, account: Account, workdir: str, pattern: str, name: str) -> str:
        """The confined host path pattern of ``--output``/``--error`` (``%j`` left to expand)."""
        text = expand_names(pattern, name, account.user)
        path = normalize(text if text.startswith("/") else f"{workdir}/{text}")
        parent, leaf = PurePosixPath(path).parent, PurePosixPath(path).name
        host_dir = resolve(root, account, str(parent))
        if not leaf or not host_dir.is_dir():
            raise PathError(f"{path}: No such file or directory")
        return str(host_dir / leaf)

    def _script(self, root: Path, account: Account, job_text: str, is_path: bool, args: list):
        """``(script text, default working directory)`` of a submission."""
        if not is_path:
            if args:
                raise RequestError("sbatch: error: args require isPath=true")
            return job_text, _home(account)
        unable = RequestError(f"sbatch: error: Unable to open file {normalize(job_text)}")
        try:
            fd, _ = open_confined(root, account, job_text, os.O_RDONLY)
        except PathError as exc:
            if "No such file" in str(exc):
                raise unable from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise unable
        with os.fdopen(fd, "rb") as f:
            text = f.read(MAX_SCRIPT_BYTES).decode(errors="replace")
        return text, str(PurePosixPath(normalize(job_text)).parent)

    def submit(
        self, account: Account, machine: str, job_text: str, is_path: bool, args: list[str]
    ) -> str:
        """sbatch: returns the new job id.

        Raises
        ------
        RequestError
            Not a compute machine, unreadable script path, malformed script, bad working
            directory or output path, or the backend refusing the job.
        """
        if machine not in COMPUTE_MACHINES:
            raise RequestError(f"sbatch: error: {machine} does not accept batch jobs")
        root = self.root(machine)
        try:
            script_text, default_dir = self._script(root, account, job_text, is_path, args)
            options = parse_batch_script(script_text)
            workdir = normalize(options.chdir or default_dir)
            host_workdir = resolve(root, account, workdir)
            if not host_workdir.is_dir():
                raise RequestError(f"sbatch: error: chdir to {workdir}: No such file or directory")
            name = options.job_name or (PurePosixPath(job_text).name if is_path else "sbatch")
            output = self._output(root, account, workdir, options.output or DEFAULT_OUTPUT, name)
            error = options.error and self._output(root, account, workdir, options.error, name)
        except (BatchScriptError, PathError) as exc:
            raise RequestError(f"sbatch: error: {exc}") from None
        job = Job(
            "",
            machine,
            account.user,
            account.uid,
            name,
            options.comment or "",
            workdir,
            host_workdir,
            options.time_limit_s,
            options.nodes,
            options.ntasks,
        )
        try:
            self.backend.submit(job, script_text, options, list(args), output, error or None)
        except RuntimeError as exc:
            raise RequestError(str(exc)) from None
        self.jobs.add(job)
        return job.jobid

    def job_rows(
        self, account: Account, machine: str, sacct: bool, kwargs: list[str], index: int = 0
    ) -> list[dict[str, str]]:
        """squeue (``sacct=False``: unfinished jobs) or sacct rows of the account's jobs."""
        filters = parse_kwargs(kwargs)
        everyone = self.jobs.all()
        self.backend.refresh(everyone)  # all users at once: the backend rate-limits refreshes
        mine = [j for j in everyone if j.user == account.user and j.machine == machine]
        selected = [
            j
            for j in mine
            if j.jobid in filters.get("jobid", {j.jobid})
            and j.user in filters.get("user", {j.user})
            and "regular" in filters.get("partition", {"regular"})
            and j.name in filters.get("name", {j.name})
            and (sacct or not j.finished)
        ]
        render = sacct_row if sacct else squeue_row
        return [render(j) for j in selected[index:]]

    def cancel(self, account: Account, machine: str, jobid: str) -> None:
        """scancel; raises RequestError for a job the account does not own or that is unknown."""
        job = self.jobs.get(jobid)
        if job is None or job.user != account.user or job.machine != machine:
            raise RequestError(
                f"scancel: error: Kill job error on job id {jobid}: Invalid job id specified"
            )
        self.backend.cancel(job)

    # --- files ------------------------------------------------------------------------------

    def ls(self, account: Account, machine: str, path: str) -> list[dict]:
        try:
            return files.ls(self.root(machine), account, path)
        except PathError as exc:
            raise RequestError(str(exc)) from None

    def download(self, account: Account, machine: str, path: str, binary: bool) -> tuple[str, bool]:
        """File contents as ``(text or base64, is_binary)``."""
        limit = self.config.max_upload_bytes
        try:
            return files.download(self.root(machine), account, path, binary, limit)
        except PathError as exc:
            raise RequestError(str(exc)) from None

    def upload(self, account: Account, machine: str, path: str, source: BinaryIO) -> str:
        """Write the file-like ``source`` to ``path``."""
        try:
            written = files.upload(self.root(machine), account, path, source)
            self.job_user.give(resolve(self.root(machine), account, path))
        except PathError as exc:
            raise RequestError(str(exc)) from None
        return written

    def run_command(self, account: Account, machine: str, command: str) -> dict:
        """Run an allowed command with its paths confined, as the job user; the task result."""
        root = self.root(machine)
        try:
            argv = command_argv(root, account, command)
            cwd = resolve(root, account, _home(account))
        except (CommandError, PathError) as exc:
            raise RequestError(str(exc)) from None
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd,
                capture_output=True,
                text=True,
                errors="backslashreplace",
                timeout=COMMAND_TIMEOUT_S,
                **self.job_user.popen_kwargs(),
            )
        except subprocess.TimeoutExpired:
            return {"status": "error", "output": "", "error": "command timed out", "exit_code": -1}
        real_root = str(root.resolve())
        output = proc.stdout.replace(real_root + "/", "/")
        error = proc.stderr.replace(real_root + "/", "/") or None
        if proc.returncode != 0 and not error:
            error = f"exit code {proc.returncode}"
        return {
            "status": "ok" if proc.returncode == 0 else "error",
            "output": output,
            "error": error,
            "exit_code": proc.returncode,
        }

    def close(self) -> None:
        self.backend.close()
