"""HTTP transport of the client: one session, bearer auth, retries with backoff, typed errors.

A small surface like requests' own (``Transport.request(method, path, **kwargs)``), so the client
above it speaks only of the API's resources.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from .errors import AuthError, BadRequest, NotFound, SfApiError, TransientError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def backoff_delays(initial: float, factor: float, maximum: float) -> Iterator[float]:
    """Endless delays ``initial, initial*factor, ...`` capped at ``maximum`` (seconds)."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)


def without_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part.

    A URL ends up in logs and error messages, and requests would turn its userinfo into a Basic
    header in place of our bearer token: credentials belong in the client's arguments only.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def error_message(body: Any) -> str:
    """The human part of an error body (``error``, ``detail`` or FastAPI's validation list)."""
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


def api_error(message: str) -> SfApiError:
    """The typed error for an ``{"status": "ERROR"}`` body."""
    if "No such file or directory" in message or "Invalid job id" in message:
        return NotFound(message)
    return BadRequest(message)


def decode(r: requests.Response) -> Any:
    """The JSON body of a final answer, or the typed error it stands for."""
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if r.status_code in (401, 403):
        raise AuthError(f"HTTP {r.status_code}: {error_message(body)}")
    if r.status_code == 404:
        raise NotFound(error_message(body))
    if r.status_code >= 400:
        raise BadRequest(f"HTTP {r.status_code}: {error_message(body)}")
    if isinstance(body, dict) and body.get("status") == "ERROR":
        raise api_error(error_message(body))
    return body


class Transport:
    """Requests to one API root with retries on transient failures.

    Parameters
    ----------
    base_url : str
        API root (already without userinfo).
    session : requests.Session
    timeout, retries, backoff
        As :class:`~sfapi_client.Client` takes them.
    auth : requests.auth.AuthBase
        Sets the bearer token of each request (:class:`~sfapi_client.auth.BearerAuth`).
    """

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        timeout: float,
        retries: int,
        backoff: tuple[float, float, float],
        auth: AuthBase,
    ):
        self.base_url, self.session, self.auth = base_url, session, auth
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request, no retry (the auth refreshes a refused token once)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        return self.session.request(method, url, auth=self.auth, timeout=self.timeout, **kwargs)

    def request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> Any:
        """JSON body of a call, with retries on transient failures when ``retry``.

        Raises
        ------
        AuthError, NotFound, BadRequest
            Final answers of the API (401/403, 404, 400/413/422).
        TransientError
            Network failure or HTTP 429/5xx, after the retries (at once when not ``retry``).
        """
        delays = backoff_delays(*self.backoff)
        problem = ""
        for attempt in range(self.retries + 1 if retry else 1):
            if attempt:
                delay = next(delays)
                log.warning("retrying %s %s in %.1fs after: %s", method, path, delay, problem)
                time.sleep(delay)
            try:
                r = self.send(method, path, **kwargs)
            except NETWORK_ERRORS as exc:
                problem = f"{type(exc).__name__}"
                continue
            except TransientError as exc:  # token endpoint unreachable
                problem = str(exc)
                continue
            if r.status_code in RETRY_STATUS:
                problem = f"HTTP {r.status_code}"
                continue
            return decode(r)
        raise TransientError(f"{method} {path} failed: {problem}")

    def close(self) -> None:
        self.session.close()
