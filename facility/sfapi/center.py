"""What the emulated center does for a request, independent of HTTP: jobs, files, commands.

Every method takes the calling :class:`~facility.sfapi.config.Account` and confines what it
touches to that account's jobs and paths.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from .batch_script import BatchScriptError, parse_batch_script
from .config import COMPUTE_MACHINES, Account, EmulatorConfig
from .filesystem import PathError, list_path, normalize, resolve
from .jobs import Job, JobRegistry, sacct_row, squeue_row
from .local_backend import LocalBackend


# Commands /utilities/command may run: read-mostly tools whose path arguments are confined.
def names_a_path(text: str) -> bool:
    """True for text that could reach outside the working directory: absolute, or with ``..``."""
    return text.startswith("/") or ".." in text.split("/")


def confine_argument(root: Path, account: Account, arg: str) -> str:
    """A command argument with any path in it confined (see :func:`resolve`).

    Paths are plain arguments or the value of ``--option=PATH``; a path glued to a short
    option (``-f/etc/x``) is refused rather than guessed at.
    """
    if arg.startswith("-"):
        option, equals, value = arg.partition("=")
        if equals and names_a_path(value):
            return f"{option}={resolve(root, account, value)}"
        if not equals and "/" in arg:
            raise PathError(f"{arg}: give the path as its own argument or as --option=PATH")
        return arg
    return str(resolve(root, account, arg)) if names_a_path(arg) else arg


ALLOWED_COMMANDS = frozenset(
    {
        "ls",
        "cat",
        "head",
        "tail",
        "wc",
        "stat",
        "du",
        "md5sum",
        "sha256sum",
        "echo",
        "pwd",
        "date",
        "hostname",
        "true",
        "false",
        "mkdir",
        "touch",
        "sleep",
    }
)
COMMAND_TIMEOUT_S = 60


class RequestError(Exception):
    """The request cannot be carried out; the message is what the API reports."""


def make_backend(config: EmulatorConfig):
    """The job backend named by ``config.backend``."""
    if config.backend == "local":
        return LocalBackend(config.state_dir, config.kill_wait_s, config.max_running_jobs)
    if config.backend == "slurm":
        from facility.slurm import SlurmCluster

        from .slurm_backend import SlurmBackend

        return SlurmBackend(
            SlurmCluster(config.slurm_var_dir or Path("var/slurm").resolve()), config.state_dir
        )
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
        self.backend = backend or make_backend(config)
        self.jobs = JobRegistry()

    def root(self, machine: str) -> Path:
        return self.config.machine_root(machine)

    def ensure_homes(self, accounts: list[Account]) -> None:
        """Create every account's directories on every machine (the first is its home)."""
        for machine in ("perlmutter", "dtns", "dtn01"):
            for account in accounts:
                for path in account.paths:
                    resolve(self.root(machine), account, path).mkdir(parents=True, exist_ok=True)

    # --- jobs -------------------------------------------------------------------------------

    def _host_pattern(self, machine: str, account: Account, pattern: str | None) -> str | None:
        if not pattern or not pattern.startswith("/"):
            return pattern
        p = PurePosixPath(pattern)
        return str(resolve(self.root(machine), account, str(p.parent)) / p.name)

    def submit(
        self, account: Account, machine: str, job_text: str, is_path: bool, args: list[str]
    ) -> str:
        """sbatch: returns the new job id.

        Raises
        ------
        RequestError
            Not a compute machine, unreadable script path, malformed script, bad working
            directory, or the backend refusing the job.
        """
        if machine not in COMPUTE_MACHINES:
            raise RequestError(f"sbatch: error: {machine} does not accept batch jobs")
        root = self.root(machine)
        try:
            if is_path:
                script_host = resolve(root, account, job_text)
                if not script_host.is_file():
                    raise RequestError(f"sbatch: error: Unable to open file {normalize(job_text)}")
                script_text = script_host.read_text(errors="replace")
                default_dir = str(PurePosixPath(normalize(job_text)).parent)
            else:
                if args:
                    raise RequestError("sbatch: error: args require isPath=true")
                script_text, default_dir = job_text, _home(account)
            options = parse_batch_script(script_text)
            workdir = normalize(options.chdir or default_dir)
            host_workdir = resolve(root, account, workdir)
            if not host_workdir.is_dir():
                raise RequestError(f"sbatch: error: chdir to {workdir}: No such file or directory")
            output = self._host_pattern(machine, account, options.output)
            error = self._host_pattern(machine, account, options.error)
        except (BatchScriptError, PathError) as exc:
            raise RequestError(f"sbatch: error: {exc}") from None
        name = options.job_name or (PurePosixPath(job_text).name if is_path else "sbatch")
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
            self.backend.submit(job, script_text, options, list(args), output, error)
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
            return list_path(self.root(machine), account, path)
        except PathError as exc:
            raise RequestError(str(exc)) from None

    def download(self, account: Account, machine: str, path: str, binary: bool) -> tuple[str, bool]:
        """File contents as ``(text or base64, is_binary)``."""
        try:
            host = resolve(self.root(machine), account, path)
        except PathError as exc:
            raise RequestError(str(exc)) from None
        if not host.is_file():
            kind = "Is a directory" if host.is_dir() else "No such file or directory"
            raise RequestError(f"{normalize(path)}: {kind}")
        if host.stat().st_size > self.config.max_upload_bytes:
            raise RequestError(
                f"{normalize(path)}: File too large to download "
                f"(limit {self.config.max_upload_bytes} bytes)"
            )
        data = host.read_bytes()
        if binary:
            return base64.b64encode(data).decode(), True
        try:
            return data.decode(), False
        except UnicodeDecodeError:
            raise RequestError(
                f"{normalize(path)}: binary file; download with binary=true"
            ) from None

    def upload(self, account: Account, machine: str, path: str, source) -> str:
        """Write the file-like ``source`` to ``path`` (into it if ``path`` is a directory)."""
        try:
            host = resolve(self.root(machine), account, path)
        except PathError as exc:
            raise RequestError(str(exc)) from None
        if host.is_dir():
            raise RequestError(f"{normalize(path)}: Is a directory")
        if not host.parent.is_dir():
            raise RequestError(f"{normalize(path)}: No such file or directory")
        tmp = host.with_name(f".{host.name}.upload")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(source, out)
        os.replace(tmp, host)
        return normalize(path)

    def run_command(self, account: Account, machine: str, command: str) -> dict:
        """Run an allowed command with its path arguments confined; the task result dict."""
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise RequestError(f"cannot parse command: {exc}") from None
        if not argv or argv[0] not in ALLOWED_COMMANDS:
            raise RequestError(
                f"command not allowed: {argv[0] if argv else ''!r}; "
                f"allowed: {', '.join(sorted(ALLOWED_COMMANDS))}"
            )
        root = self.root(machine)
        try:
            args = [confine_argument(root, account, a) for a in argv[1:]]
            cwd = resolve(root, account, _home(account))
        except PathError as exc:
            raise RequestError(str(exc)) from None
        try:
            proc = subprocess.run(
                [argv[0], *args], cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
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
