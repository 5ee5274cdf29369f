"""Cross-site request protection of the dashboard's write actions.

A write must prove it comes from a dashboard page of the same login:

- ``X-CSRF-Token``: an HMAC of the user's own JWT (the session), shown only on the pages that
  user loaded. Another site can neither read it nor compute it; it needs no server-side state,
  so every api-server worker checks it alike, and it changes with each new login.
- a JSON body (``Content-Type: application/json``): a cross-site HTML form cannot send one,
  and a cross-site ``fetch`` with it needs a CORS pre-flight that the dashboard never grants.
- ``Origin`` / ``Sec-Fetch-Site``, when the browser sends them, name this very site.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, status

CSRF_HEADER = "X-CSRF-Token"
_PURPOSE = b"sfxflow dashboard csrf v1"


def csrf_token(session_jwt: str) -> str:
    """The CSRF token of one login session (its JWT)."""
    return hmac.new(session_jwt.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def _refuse(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, f"cross-site request refused: {reason}")


def own_origin(request: Request) -> str:
    """scheme://host[:port] the browser used to reach this server."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def check_same_site(request: Request, session_jwt: str) -> None:
    """403 unless the write request carries the session's token, JSON, and no foreign origin."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site not in (None, "same-origin", "none"):
        raise _refuse(f"Sec-Fetch-Site is {fetch_site}")
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        raise _refuse(f"Origin {origin} is not {own_origin(request)}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise _refuse("the body must be JSON (application/json)")
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(session_jwt).encode()):
        raise _refuse(f"missing or wrong {CSRF_HEADER} header (reload the page)")
