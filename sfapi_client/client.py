"""A small synchronous client of the Superfacility API v1.2 (requests-based, no Airflow).

Every call retries transient failures (connection errors, HTTP 429/5xx) with exponential
backoff (:mod:`.transport`); a job submission is made exactly-once by a key in the job's comment
(:mod:`.submission`, which states its one timing assumption), so a lost response or a slow,
asynchronous ``sbatch`` never yields a second job.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import requests

from .auth import BearerAuth, ClientCredentials, StaticToken, TokenSource, read_credentials_file
from .errors import (
    AuthError,
    BadRequest,
    FacilityUnavailable,
    JobFailed,
    NotFound,
    SfApiError,
    WaitTimeout,
)
from .jobs import KEY_PREFIX, Job, job_from_row, new_key, stored_key, tag_script
from .submission import submit_once, task_result
from .transport import Transport, backoff_delays, without_userinfo


class Client:
    """Client of one Superfacility API endpoint.

    Parameters
    ----------
    base_url : str
        API root, e.g. ``https://api.nersc.gov/api/v1.2``; a ``user:password@`` in it (or in
        ``token_url``) is dropped, so no URL the client logs or raises with carries a secret.
    token : str, optional
        A static bearer token.
    client_id, private_key : str, optional
        OAuth2 client credentials (private_key_jwt, RS256); ``private_key`` is a PEM string.
    credentials_file : path, optional
        JSON file (mode 0600) with ``token`` or ``client_id`` + ``secret``/``private_key``
        (+ optional ``token_url``).
    token_url : str, optional
        Token endpoint; default ``<scheme>://<host>/oauth2/token`` of ``base_url``.
    timeout : float
        Seconds per HTTP request.
    retries : int
        Extra attempts after a transient failure.
    backoff : (float, float, float)
        ``(initial, factor, maximum)`` seconds between retries.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        private_key: str | None = None,
        credentials_file: str | Path | None = None,
        token_url: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: tuple[float, float, float] = (0.5, 2.0, 30.0),
    ):
        self.base_url = without_userinfo(base_url).rstrip("/")
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        if credentials_file is not None:
            doc = read_credentials_file(credentials_file)
            token = doc.get("token")
            client_id = doc.get("client_id")
            private_key = doc.get("private_key") or doc.get("secret")
            token_url = token_url or doc.get("token_url")
        source: TokenSource
        if token:
            source = StaticToken(token)
        elif client_id and private_key:
            parts = urlsplit(self.base_url)
            token_url = without_userinfo(
                token_url or f"{parts.scheme}://{parts.netloc}/oauth2/token"
            )
            source = ClientCredentials(client_id, private_key, token_url, session, timeout)
        else:
            raise AuthError("give token=, client_id= and private_key=, or credentials_file=")
        # Set per request, not on the session: the token request itself must go without it.
        self._auth = source
        self.auth = BearerAuth(source)
        self.transport = Transport(self.base_url, session, timeout, retries, backoff, self.auth)
        self._user: str | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> Any:
        """JSON body of one API call (see :meth:`Transport.request`)."""
        return self.transport.request(method, path, retry=retry, **kwargs)

    # --- status ----------------------------------------------------------------------------

    def status(self, system: str) -> dict:
        """``GET /status/{system}``: name, status (active/degraded/unavailable/other), notes, ..."""
        return self._request("GET", f"status/{system}")

    def outages(self, system: str, planned: bool = True) -> list[dict]:
        """Planned (future) outages of ``system``, or current and past ones if not ``planned``."""
        return self._request("GET", f"status/outages/{'planned/' if planned else ''}{system}")

    def require_available(self, system: str) -> dict:
        """The status of ``system``; raises :class:`FacilityUnavailable` unless it is usable."""
        status = self.status(system)
        if status.get("status") not in ("active", "degraded"):
            notes = "; ".join(status.get("notes") or [])
            raise FacilityUnavailable(f"{system} is {status.get('status')}: {notes}", status)
        return status

    def user(self) -> str:
        """The account name behind the credentials (``GET /account/``), cached."""
        if self._user is None:
            self._user = self._request("GET", "account/")["name"]
        return self._user

    # --- jobs ------------------------------------------------------------------------------

    def _rows(self, machine: str, sacct: bool, kwargs: list[str]) -> list[dict]:
        params = {"sacct": str(sacct).lower(), "cached": "false", "kwargs": kwargs}
        body = self._request("GET", f"compute/jobs/{machine}", params=params)
        return body.get("output") or []

    def job(self, machine: str, jobid: str) -> Job:
        """A job's current record: from squeue while queued or running, else from sacct.

        Raises
        ------
        NotFound
            Neither squeue nor sacct knows the job (or it is another user's).
        """
        for sacct in (False, True):
            rows = [
                r
                for r in self._rows(machine, sacct, [f"jobid={jobid}"])
                if str(r.get("jobid")) == str(jobid)
            ]
            if rows:
                return job_from_row(machine, rows[0])
        raise NotFound(f"job {jobid} not found on {machine}")

    def find_jobs(self, machine: str, keys: list[str]) -> dict[str, Job]:
        """The caller's jobs carrying any of the idempotency ``keys``, by key.

        squeue's record wins over sacct's (it is the fresher one for a job still queued or
        running); sacct is not asked when squeue already had every key.
        """
        wanted = {KEY_PREFIX + stored_key(key): key for key in keys}
        found: dict[str, Job] = {}
        for sacct in (False, True):
            if len(found) == len(wanted):
                break
            for row in self._rows(machine, sacct, [f"user={self.user()}"]):
                key = wanted.get(str(row.get("comment") or ""))
                if key is not None and key not in found:
                    found[key] = job_from_row(machine, row)
        return found

    def find_job(self, machine: str, key: str) -> Job | None:
        """The caller's job whose comment carries idempotency ``key``, if any."""
        return self.find_jobs(machine, [key]).get(key)

    def submit_job(
        self, machine: str, script: str, key: str | None = None, task_timeout: float = 120.0
    ) -> Job:
        """Submit a batch script exactly once and return the job.

        The center submits asynchronously (the POST returns a task; ``sbatch`` runs later), so a
        second POST is made only when the first provably made no job (see :mod:`.submission`).

        Parameters
        ----------
        machine : str
        script : str
            Script text starting with ``#!``.
        key : str, optional
            Idempotency key. Give a stable one (e.g. derived from the run and try) when the
            caller itself may retry: an existing job with this key is returned instead of
            submitting again. Default: a fresh key, still used to look up lost responses.
        task_timeout : float
            Seconds to wait for the submission task to finish (and for a lost answer's job to
            show).

        Raises
        ------
        BadRequest
            The center refused the script (the message is sbatch's).
        TransientError
            The center stayed unreachable, the answer was lost and no job showed in time, or the
            task stayed ``new`` (it is cancelled first).
        SfApiError
            Every error raised here carries ``key``, the key to call again with: a job that
            exists or is about to is then found, not duplicated.
        """
        look_first = key is not None
        key = key or new_key()
        tagged = tag_script(script, key)
        try:
            return submit_once(self, machine, tagged, key, look_first, task_timeout)
        except SfApiError as exc:
            if exc.key is None:
                exc.key = key
            raise

    def wait(
        self,
        machine: str,
        jobid: str,
        *,
        until: str = "finished",
        timeout: float | None = None,
        poll: tuple[float, float, float] = (1.0, 1.5, 30.0),
        raise_on_failure: bool = False,
    ) -> Job:
        """Poll a job until it is running or finished, with growing intervals.

        Parameters
        ----------
        until : {"finished", "running"}
            ``running`` returns as soon as the job runs (or has already finished).
        timeout : float, optional
            Seconds before :class:`WaitTimeout`.
        poll : (float, float, float)
            ``(first, factor, maximum)`` seconds between polls; one API call per poll.
        raise_on_failure : bool
            Raise :class:`JobFailed` when the job ends in any state but COMPLETED.
        """
        if until not in ("finished", "running"):
            raise ValueError(f"until must be 'finished' or 'running', not {until!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        delays = backoff_delays(*poll)
        while True:
            job = self.job(machine, jobid)
            if job.finished or (until == "running" and job.state == "RUNNING"):
                if raise_on_failure and job.finished and not job.succeeded:
                    raise JobFailed(job)
                return job
            delay = next(delays)
            if deadline is not None:
                if time.monotonic() >= deadline:
                    raise WaitTimeout(
                        f"job {jobid} on {machine} still {job.state} after {timeout}s"
                    )
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            time.sleep(delay)

    def cancel(self, machine: str, jobid: str) -> None:
        """scancel a job (SIGTERM, then SIGKILL after the center's grace period)."""
        self._request("DELETE", f"compute/jobs/{machine}/{jobid}")

    # --- utilities -------------------------------------------------------------------------

    @staticmethod
    def _path(path: str) -> str:
        """``path`` for a URL; ``..`` is refused here (HTTP libraries would silently fold it)."""
        if ".." in path.split("/"):
            raise BadRequest(f"path {path!r}: '..' is not allowed in paths")
        return quote(path.lstrip("/"))

    def ls(self, machine: str, path: str) -> list[dict]:
        """``ls -la``: entries with perms, size, date, name (``.`` first for a directory)."""
        return self._request("GET", f"utilities/ls/{machine}/{self._path(path)}")["entries"]

    def download(self, machine: str, path: str) -> bytes:
        """The bytes of a file."""
        body = self._request(
            "GET", f"utilities/download/{machine}/{self._path(path)}", params={"binary": "true"}
        )
        return base64.b64decode(body["file"]) if body.get("is_binary") else body["file"].encode()

    def upload(self, machine: str, path: str, data: bytes | BinaryIO | Path) -> None:
        """Write ``data`` to the file ``path`` (replacing it)."""
        if isinstance(data, Path):
            data = data.read_bytes()
        elif not isinstance(data, bytes):
            data = data.read()
        name = path.rstrip("/").rsplit("/", 1)[-1]
        self._request(
            "PUT", f"utilities/upload/{machine}/{self._path(path)}", files={"file": (name, data)}
        )

    def run_command(self, machine: str, command: str, timeout: float = 120.0) -> str:
        """Run a command on ``machine`` (as the account) and return its output.

        Not retried after a lost response: the command may already have run.

        Raises
        ------
        BadRequest
            The command failed or is not allowed; the message holds its stderr.
        """
        body = self._request(
            "POST", f"utilities/command/{machine}", retry=False, data={"executable": command}
        )
        result = task_result(self, str(body["task_id"]), timeout)
        if result.get("status") == "error" or result.get("error"):
            raise BadRequest(f"command on {machine} failed: {result.get('error')}")
        return result.get("output") or ""
