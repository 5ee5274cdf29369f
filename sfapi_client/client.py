"""A small synchronous client of the Superfacility API v1.2 (requests-based, no Airflow).

Every call retries transient failures (connection errors, HTTP 429/5xx) with exponential
backoff; a job submission is made idempotent by a key in the job's comment, which is looked up
before any resubmission, so a lost response never yields a second job.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from .auth import ClientCredentials, StaticToken, read_credentials_file
from .errors import (
    AuthError,
    BadRequest,
    FacilityUnavailable,
    JobFailed,
    NotFound,
    SfApiError,
    TransientError,
    WaitTimeout,
)
from .jobs import KEY_PREFIX, Job, job_from_row, new_key, stored_key, tag_script

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def backoff_delays(initial: float, factor: float, maximum: float):
    """Endless delays ``initial, initial*factor, ...`` capped at ``maximum`` (seconds)."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)


def _error_message(body) -> str:
    if isinstance(body, dict):
        detail = body.get("error") or body.get("detail") or body
        if isinstance(detail, list):  # FastAPI validation errors
            detail = "; ".join(
                f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            )
        return str(detail)
    return str(body)[:500]


def without_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part.

    A URL ends up in logs and error messages, and requests would turn its userinfo into a Basic
    header in place of our bearer token: credentials belong in the client's arguments only.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _api_error(message: str) -> SfApiError:
    """The typed error for an ``{"status": "ERROR"}`` body."""
    if "No such file or directory" in message or "Invalid job id" in message:
        return NotFound(message)
    return BadRequest(message)


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
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        self._timeout, self._retries, self._backoff = timeout, retries, backoff
        if credentials_file is not None:
            doc = read_credentials_file(credentials_file)
            token = doc.get("token")
            client_id = doc.get("client_id")
            private_key = doc.get("private_key") or doc.get("secret")
            token_url = token_url or doc.get("token_url")
        if token:
            self._auth = StaticToken(token)
        elif client_id and private_key:
            parts = urlsplit(self.base_url)
            token_url = without_userinfo(
                token_url or f"{parts.scheme}://{parts.netloc}/oauth2/token"
            )
            self._auth = ClientCredentials(
                client_id, private_key, token_url, self._session, timeout
            )
        else:
            raise AuthError("give token=, client_id= and private_key=, or credentials_file=")
        self._user: str | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- HTTP ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request with a valid token; a 401 refreshes the token once."""
        url = f"{self.base_url}/{path.lstrip('/')}"

        def send() -> requests.Response:
            return self._session.request(
                method,
                url,
                headers={"Authorization": self._auth.header()},
                timeout=self._timeout,
                **kwargs,
            )

        r = send()
        if r.status_code == 401 and self._auth.invalidate():
            r = send()
        return r

    def _request(self, method: str, path: str, *, retry: bool = True, **kwargs):
        """JSON body of a call, with retries on transient failures when ``retry``.

        Raises
        ------
        AuthError, NotFound, BadRequest
            Final answers of the API (401/403, 404, 400/413/422).
        TransientError
            Network failure or HTTP 429/5xx, after the retries (at once when not ``retry``).
        """
        delays = backoff_delays(*self._backoff)
        problem = ""
        for attempt in range(self._retries + 1 if retry else 1):
            if attempt:
                delay = next(delays)
                log.warning("retrying %s %s in %.1fs after: %s", method, path, delay, problem)
                time.sleep(delay)
            try:
                r = self._send(method, path, **kwargs)
            except _NETWORK_ERRORS as exc:
                problem = f"{type(exc).__name__}"
                continue
            except TransientError as exc:  # token endpoint unreachable
                problem = str(exc)
                continue
            if r.status_code in RETRY_STATUS:
                problem = f"HTTP {r.status_code}"
                continue
            return self._decode(r)
        raise TransientError(f"{method} {path} failed: {problem}")

    @staticmethod
    def _decode(r: requests.Response):
        try:
            body = r.json()
        except ValueError:
            body = r.text
        if r.status_code in (401, 403):
            raise AuthError(f"HTTP {r.status_code}: {_error_message(body)}")
        if r.status_code == 404:
            raise NotFound(_error_message(body))
        if r.status_code >= 400:
            raise BadRequest(f"HTTP {r.status_code}: {_error_message(body)}")
        if isinstance(body, dict) and body.get("status") == "ERROR":
            raise _api_error(_error_message(body))
        return body

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
                key = wanted.get(row.get("comment"))
                if key is not None and key not in found:
                    found[key] = job_from_row(machine, row)
        return found

    def find_job(self, machine: str, key: str) -> Job | None:
        """The caller's job whose comment carries idempotency ``key``, if any."""
        return self.find_jobs(machine, [key]).get(key)

    def _wait_task(self, task_id: str, timeout: float) -> dict:
        """The decoded ``result`` of a task once it leaves ``new``; WaitTimeout if it never does."""
        deadline = time.monotonic() + timeout
        delays = backoff_delays(0.05, 2.0, 2.0)
        while True:
            task = self._request("GET", f"tasks/{task_id}")
            if task.get("status") != "new":
                result = task.get("result")
                result = json.loads(result) if isinstance(result, str) else (result or {})
                if task["status"] != "completed" and result.get("status") != "error":
                    result = {"status": "error", "error": f"task {task_id} {task['status']}"}
                return result
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} still 'new' after {timeout:.0f}s")
            time.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))

    def submit_job(
        self, machine: str, script: str, key: str | None = None, task_timeout: float = 120.0
    ) -> Job:
        """Submit a batch script exactly once and return the job.

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
            Seconds to wait for the submission task to finish.

        Raises
        ------
        BadRequest
            The center refused the script (the message is sbatch's).
        TransientError
            The center stayed unreachable, or the task stayed ``new``; the error's ``key``
            attribute is the key to call again with, so a late job is found, not duplicated.
        """
        caller_key = key is not None
        key = key or new_key()
        tagged = tag_script(script, key)
        delays = backoff_delays(*self._backoff)
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(next(delays))
            if attempt or caller_key:
                try:
                    found = self.find_job(machine, key)
                except TransientError as exc:  # never resubmit without knowing
                    log.warning("looking up key %s on %s: %s", key, machine, exc)
                    continue
                if found is not None:
                    log.info("job with key %s already exists: %s", key, found.jobid)
                    return found
            try:
                body = self._request(
                    "POST",
                    f"compute/jobs/{machine}",
                    retry=False,
                    data={"job": tagged, "isPath": "false"},
                )
            except TransientError as exc:
                log.warning(
                    "submit to %s: %s; will look key %s up before resubmitting", machine, exc, key
                )
                continue
            try:
                result = self._wait_task(str(body["task_id"]), task_timeout)
            except WaitTimeout as exc:
                if (found := self.find_job(machine, key)) is not None:
                    return found
                raise TransientError(f"submit to {machine}: {exc}", key=key) from None
            if result.get("status") == "error" or not result.get("jobid"):
                raise BadRequest(f"submit to {machine} refused: {result.get('error')}")
            return Job(
                machine, str(result["jobid"]), "PENDING", comment=KEY_PREFIX + stored_key(key)
            )
        raise TransientError(
            f"submit to {machine} failed after {self._retries + 1} attempts; "
            "no job with its key was found",
            key=key,
        )

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
        result = self._wait_task(str(body["task_id"]), timeout)
        if result.get("status") == "error" or result.get("error"):
            raise BadRequest(f"command on {machine} failed: {result.get('error')}")
        return result.get("output") or ""
