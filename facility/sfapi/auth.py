"""Bearer-token authentication: OAuth2 client credentials with private_key_jwt, plus a static token.

The token endpoint checks an RS256 client assertion (RFC 7523) signed with the private key whose
public half is registered for the client, and returns a short-lived opaque access token. Only a
hash of each token is kept, and tokens are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from .config import Account, Client

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME_S = 3660  # authlib, used by the official client, signs 1-hour assertions


class OAuthError(Exception):
    """A token request is refused; ``code`` is the RFC 6749 error code."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


class Unauthorized(Exception):
    """A request carries no valid bearer token."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class _Grant:
    account: Account
    expires_at: float


class ReplayCache:
    """Assertion ids (jti) already used, until their assertion expires; kept in a 0600 file.

    The file survives a restart, so an assertion captured before it cannot be replayed after.
    """

    def __init__(self, path: Path | None):
        self._path = path
        self._seen: dict[str, float] = {}
        if path is not None and path.exists():
            try:
                self._seen = {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError):
                log.warning("replay cache %s unreadable: starting empty", path)

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """Record ``key``; False if it was seen before and has not expired (a replay)."""
        self._seen = {k: t for k, t in self._seen.items() if t > now}
        if key in self._seen:
            return False
        self._seen[key] = expires_at
        if self._path is not None:
            temp = self._path.with_name(self._path.name + ".tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self._seen, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self._path)
        return True


class TokenService:
    """Issues and checks access tokens.

    Parameters
    ----------
    clients : dict of str to Client
        Registered clients by id.
    lifetime_s : int
        Access token lifetime in seconds.
    static_token : str or None
        A token that never expires, for ``static_account``.
    static_account : Account or None
    token_url : str
        The token endpoint's public URL: the one audience an assertion may name (never taken from
        the request, whose Host header the caller chooses).
    replay_file : Path or None
        Where used assertion ids are kept across restarts.
    """

    def __init__(
        self,
        clients: dict[str, Client],
        lifetime_s: int,
        static_token: str | None = None,
        static_account: Account | None = None,
        *,
        token_url: str,
        replay_file: Path | None = None,
    ):
        self._clients = clients
        self._lifetime_s = lifetime_s
        self._token_url = token_url
        self._grants: dict[str, _Grant] = {}
        self._replays = ReplayCache(replay_file)
        self._lock = threading.Lock()
        if static_token and static_account is not None:
            self._grants[_digest(static_token)] = _Grant(static_account, float("inf"))

    def issue(self, form: dict[str, str]) -> dict:
        """Answer a client-credentials token request (the form of ``POST /oauth2/token``).

        Raises
        ------
        OAuthError
            Wrong grant type, unknown client, or an assertion that is invalid, expired, replayed or
            not addressed to the configured token URL.
        """
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError("invalid_client", "a private_key_jwt client assertion is required")
        assertion = form["client_assertion"]
        try:
            claimed_id = (
                form.get("client_id")
                or jwt.decode(assertion, options={"verify_signature": False})["iss"]
            )
        except (jwt.PyJWTError, KeyError):
            raise OAuthError("invalid_client", "malformed client assertion") from None
        client = self._clients.get(claimed_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client")
        try:
            claims = jwt.decode(
                assertion,
                client.public_key_pem,
                algorithms=["RS256"],
                audience=self._token_url,
                issuer=client.client_id,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_client", f"client assertion rejected: {exc}") from None
        if claims["sub"] != client.client_id:
            raise OAuthError("invalid_client", "assertion subject is not the client")
        now = time.time()
        if claims["exp"] - now > MAX_ASSERTION_LIFETIME_S:
            raise OAuthError("invalid_client", "client assertion lives too long")
        token = secrets.token_urlsafe(32)
        with self._lock:
            if not self._replays.add(f"{client.client_id}:{claims['jti']}", claims["exp"], now):
                raise OAuthError("invalid_client", "client assertion replayed")
            self._grants = {d: g for d, g in self._grants.items() if g.expires_at > now}
            self._grants[_digest(token)] = _Grant(client.account, now + self._lifetime_s)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._lifetime_s,
            "scope": "sfapi",
        }

    def account_for(self, authorization: str | None) -> Account:
        """The account behind an ``Authorization: Bearer ...`` header.

        Raises
        ------
        Unauthorized
            Missing, unknown or expired token.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Not authenticated")
        grant = self._grants.get(_digest(token.strip()))
        if grant is None:
            raise Unauthorized("Invalid token")
        if grant.expires_at <= time.time():
            raise Unauthorized("Token expired")
        return grant.account
