"""Where the client's bearer tokens come from: a static token, or OAuth2 client credentials
with a ``private_key_jwt`` (RS256) client assertion, refreshed before they expire.

Secrets are read from files only the owner can read; they are never logged.
"""

from __future__ import annotations

import json
import stat
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import jwt
import requests
from requests.auth import AuthBase

from .errors import AuthError, TransientError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 300


def read_credentials_file(path: str | Path) -> dict:
    """Credentials from a JSON file of mode 0600/0400.

    The file holds ``{"client_id", "secret" or "private_key", "token_url"?}`` (the official
    client's format) or ``{"token": ...}``.

    Raises
    ------
    AuthError
        Missing, readable by group/others, or not such a JSON object.
    """
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise AuthError(f"cannot read credentials file {p}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(f"credentials file {p} is readable by others; chmod 600 it")
    try:
        doc = json.loads(p.read_text())
    except ValueError:
        raise AuthError(f"credentials file {p} is not JSON") from None
    if not isinstance(doc, dict) or not ("token" in doc or "client_id" in doc):
        raise AuthError(f"credentials file {p} needs 'token' or 'client_id' + 'secret'")
    return doc


class TokenSource(Protocol):
    """Where a bearer token comes from."""

    def header(self) -> str: ...

    def invalidate(self) -> bool: ...


class BearerAuth(AuthBase):
    """``requests`` auth: the source's bearer token on every request, renewed once after a 401.

    Parameters
    ----------
    source : StaticToken or ClientCredentials
    """

    def __init__(self, source: TokenSource):
        self.source = source

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.source.header()
        r.register_hook("response", self._renew_on_401)
        return r

    def _renew_on_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r.status_code != 401 or not self.source.invalidate():
            return r
        r.close()
        again = r.request.copy()
        again.deregister_hook("response", self._renew_on_401)  # once only
        again.headers["Authorization"] = self.source.header()
        renewed = r.connection.send(again, **kwargs)
        renewed.history.append(r)
        renewed.request = again
        return renewed


class StaticToken:
    """A bearer token given once; it cannot be refreshed."""

    def __init__(self, token: str):
        self._token = token

    def header(self) -> str:
        return f"Bearer {self._token}"

    def invalidate(self) -> bool:
        """Nothing to refresh: returns False so a 401 is final."""
        return False


class ClientCredentials:
    """Access tokens from a token endpoint, authenticated with a signed client assertion.

    Parameters
    ----------
    client_id : str
    private_key : str
        PEM of the client's RSA private key.
    token_url : str
    session : requests.Session
    timeout : float
        Seconds per token request.
    """

    def __init__(
        self,
        client_id: str,
        private_key: str,
        token_url: str,
        session: requests.Session,
        timeout: float = 30.0,
    ):
        self._client_id, self._key, self._url = client_id, private_key, token_url
        self._session, self._timeout = session, timeout
        self._token: str | None = None
        self._refresh_at = 0.0

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self._url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": uuid.uuid4().hex,
        }
        try:
            return jwt.encode(claims, self._key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"cannot sign a client assertion with the private key: {exc}") from None

    def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(),
        }
        try:
            r = self._session.post(self._url, data=form, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TransientError(
                f"token endpoint {self._url} unreachable: {type(exc).__name__}"
            ) from None
        if r.status_code >= 500 or r.status_code == 429:
            raise TransientError(f"token endpoint {self._url} answered HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or f"HTTP {r.status_code}"
            raise AuthError(f"token request for client {self._client_id} refused: {reason}")
        lifetime = float(body.get("expires_in", 600))
        self._token = body["access_token"]
        # Refresh a little before expiry so a token never dies in flight.
        self._refresh_at = time.time() + lifetime - min(30.0, lifetime / 4)

    def header(self) -> str:
        if self._token is None or time.time() >= self._refresh_at:
            self._fetch()
        return f"Bearer {self._token}"

    def invalidate(self) -> bool:
        """Forget the token after a 401; returns True because a new one can be fetched."""
        self._token = None
        return True
