"""Who may see the dashboard: the user of the Airflow UI, checked by Airflow's auth manager.

The UI keeps its JWT in the ``_token`` cookie and the REST API sends ``Authorization: Bearer``;
Airflow's own ``get_user`` accepts either and validates it with the configured auth manager
(signature, expiry, revocation). Anonymous or invalid requests are refused: pages redirect to
the login page, data and plots answer 401/403.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# Airflow's API modules are imported when a request comes, not when the plugin is loaded: every
# Airflow process loads plugins, and only the api-server serves the dashboard.
bearer_scheme = HTTPBearer(auto_error=False)


class LoginRequired(Exception):
    """A page was requested without a valid login; answered by a redirect to the login page."""


def _authorize(user):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView

    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed to view the Airflow UI")
    return user


async def api_user(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
):
    """The authenticated Airflow user allowed to see the UI; 401 (anonymous) or 403 otherwise."""
    from airflow.api_fastapi.core_api.security import get_user

    return _authorize(await get_user(request, None, credentials))


async def page_user(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
):
    """Like :func:`api_user`, but a missing, expired or invalid login means "log in first"."""
    from airflow.api_fastapi.core_api.security import get_user

    try:
        user = await get_user(request, None, credentials)
    except HTTPException as exc:
        raise LoginRequired() from exc
    return _authorize(user)


def login_url(request: Request) -> str:
    """Airflow's login page, coming back to the requested page afterwards."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=str(request.url))
