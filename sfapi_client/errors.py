"""Typed errors of the Superfacility API client; all derive from :class:`SfApiError`."""

from __future__ import annotations


class SfApiError(Exception):
    """Any failure talking to the Superfacility API.

    ``key`` is the idempotency key when the error followed a job submission: submitting again
    with it returns the job if it exists instead of making a second one.
    """

    key: str | None = None


class AuthError(SfApiError):
    """Credentials refused (bad key or signature, unknown client, expired or forbidden token)."""


class NotFound(SfApiError):
    """The job, task, file or system does not exist (or is not the caller's)."""


class BadRequest(SfApiError):
    """The API rejected the request itself: malformed script, bad path, too large, invalid input."""


class FacilityUnavailable(SfApiError):
    """The system is down or in an outage; try again after it returns."""

    def __init__(self, message: str, status: dict | None = None):
        super().__init__(message)
        self.status = status


class TransientError(SfApiError):
    """A failure that may pass: network errors, HTTP 5xx/429 after retries, a task stuck in ``new``.

    ``key`` is set when a submission's outcome is unknown: submit again with that key.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class JobFailed(SfApiError):
    """A job ended in a state other than ``COMPLETED``; ``job`` holds its final record."""

    def __init__(self, job):
        super().__init__(
            f"job {job.jobid} on {job.machine} ended {job.state} (exit code {job.exit_code})"
        )
        self.job = job


class WaitTimeout(SfApiError, TimeoutError):
    """A wait for a job or task ran out of time; the job itself may still be fine."""
