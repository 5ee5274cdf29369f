"""Exactly-once job submission against a center that submits asynchronously.

At NERSC ``POST /compute/jobs`` only creates a task; ``sbatch`` runs later. A key lookup made while
that task is pending misses a job that is about to exist, so a second POST is made only when the
first cannot yield a job:

- the center answered the POST with HTTP 429/5xx (it did not take the request), or the request
  never left (connection refused): look the key up, then POST again;
- the POST was answered with a task: wait for that task; if it stays ``new`` past
  ``task_timeout``, cancel it, and only a confirmed cancellation ends the call (with the key);
- the outcome is unknown (response lost, read timeout): never POST again in this call; look the
  key up until the job shows or ``task_timeout`` passes, then raise with the key.

The one assumption: a request whose answer was lost lands (its job shows) within
``task_timeout``; the real API's tasks carry no key, so nothing else could tell.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import requests
import urllib3

from .errors import BadRequest, SfApiError, TransientError, WaitTimeout
from .jobs import KEY_PREFIX, Job, stored_key
from .transport import NETWORK_ERRORS, RETRY_STATUS, backoff_delays, decode

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)


class _Refused(Exception):
    """The POST provably created no task: the center answered 429/5xx or was never reached."""


class _Unknown(Exception):
    """The POST may have created a task whose id we never saw."""


def never_sent(exc: Exception) -> bool:
    """True for a network error raised before the request reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def post_submit(client: Client, machine: str, tagged: str) -> str:
    """POST the script once; the task id, or :class:`_Refused` / :class:`_Unknown`."""
    try:
        r = client.transport.send(
            "POST", f"compute/jobs/{machine}", data={"job": tagged, "isPath": "false"}
        )
    except NETWORK_ERRORS as exc:
        if never_sent(exc):
            raise _Refused(type(exc).__name__) from None
        raise _Unknown(type(exc).__name__) from None
    if r.status_code in RETRY_STATUS:
        raise _Refused(f"HTTP {r.status_code}")
    try:
        return str(decode(r)["task_id"])
    except (KeyError, TypeError):
        raise _Unknown("no task id in the answer") from None


def task_result(client: Client, task_id: str, timeout: float) -> dict:
    """The decoded result of a task once it leaves ``new``; WaitTimeout if it never does."""
    deadline = time.monotonic() + timeout
    delays = backoff_delays(0.05, 2.0, 2.0)
    while True:
        try:
            task = client._request("GET", f"tasks/{task_id}")
        except TransientError as exc:  # keep asking: the task is ours and may still run
            log.warning("polling task %s: %s", task_id, exc)
            task = {"status": "new"}
        if task.get("status") != "new":
            result = task.get("result")
            result = json.loads(result) if isinstance(result, str) else (result or {})
            if task["status"] != "completed" and result.get("status") != "error":
                result = {"status": "error", "error": f"task {task_id} {task['status']}"}
            result["task_status"] = task["status"]
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"task {task_id} still 'new' after {timeout:.0f}s")
        time.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))


def own_task_result(client: Client, machine: str, task_id: str, key: str, timeout: float) -> dict:
    """Our task's result; a task still ``new`` after ``timeout`` is cancelled first.

    Raises
    ------
    TransientError
        The task was cancelled (no job will come of it) or its fate is still open; ``key`` set.
    """
    try:
        return task_result(client, task_id, timeout)
    except WaitTimeout as exc:
        waited = exc
    try:
        task = client._request("DELETE", f"tasks/{task_id}")
    except SfApiError:
        task = {"status": "new"}
    if task.get("status") == "cancelled":
        raise TransientError(
            f"submit to {machine}: {waited}; cancelled, so no job will come of it", key=key
        ) from None
    try:  # the center refused the cancellation: its sbatch is under way
        return task_result(client, task_id, timeout)
    except WaitTimeout:
        raise TransientError(
            f"submit to {machine}: {waited} and could not be cancelled; call again with key "
            f"{key} once task {task_id} has ended",
            key=key,
        ) from None


def await_unknown(client: Client, machine: str, key: str, timeout: float) -> Job:
    """After a POST with an unknown outcome: the job once its key shows, never a second POST."""
    deadline = time.monotonic() + timeout
    delays = backoff_delays(0.2, 1.5, 2.0)
    failures = 0
    while True:
        try:
            found = client.find_job(machine, key)
            failures = 0
        except TransientError as exc:
            log.warning("looking up key %s on %s: %s", key, machine, exc)
            found, failures = None, failures + 1
        if found is not None:
            log.info("job with key %s already exists: %s", key, found.jobid)
            return found
        if time.monotonic() >= deadline or failures > client.transport.retries:
            raise TransientError(
                f"submit to {machine}: the answer was lost and no job with its key {key} "
                f"showed within {timeout:.0f}s; call again with that key",
                key=key,
            )
        time.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))


def submit_once(
    client: Client, machine: str, tagged: str, key: str, look_first: bool, task_timeout: float
) -> Job:
    """The job of ``tagged`` (already carrying ``key``), submitted at most once."""
    delays = backoff_delays(*client.transport.backoff)
    for attempt in range(client.transport.retries + 1):
        if attempt:
            time.sleep(next(delays))
        if attempt or look_first:
            try:
                found = client.find_job(machine, key)
            except TransientError as exc:  # never resubmit without knowing
                log.warning("looking up key %s on %s: %s", key, machine, exc)
                continue
            if found is not None:
                log.info("job with key %s already exists: %s", key, found.jobid)
                return found
        try:
            task_id = post_submit(client, machine, tagged)
        except _Refused as exc:
            log.warning(
                "submit to %s: %s; will look key %s up before resubmitting", machine, exc, key
            )
            continue
        except _Unknown as exc:
            log.warning("submit to %s: %s; waiting for key %s to show", machine, exc, key)
            return await_unknown(client, machine, key, task_timeout)
        result = own_task_result(client, machine, task_id, key, task_timeout)
        if result.get("status") == "error" or not result.get("jobid"):
            raise BadRequest(f"submit to {machine} refused: {result.get('error')}")
        return Job(machine, str(result["jobid"]), "PENDING", comment=KEY_PREFIX + stored_key(key))
    raise TransientError(
        f"submit to {machine} failed after {client.transport.retries + 1} attempts; "
        "no job with its key was found",
        key=key,
    )
