"""What a dashboard user may change, as Airflow's auth manager decides it.

Tags and datasets are beamtime settings (the Variable ``sfxflow_beamtime`` and the tags it
gives runs): changing them needs the right to edit that Variable. A reprocess is a new DAG run
of ``sfx_reprocess``: it needs the right to trigger that DAG. A viewer has neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from operators.pipeline.beamtime import VARIABLE

from .auth import api_user, bearer_scheme

REPROCESS_DAG = "sfx_reprocess"
EDIT_SETTINGS = "edit_settings"
REPROCESS = "reprocess"


@dataclass(frozen=True)
class Actor:
    """The user acting, their own JWT (forwarded to Airflow's REST API) and what they may do."""

    username: str
    jwt: str
    may: frozenset[str]


def allowed_actions(user) -> frozenset[str]:
    """The dashboard actions Airflow's auth manager grants ``user``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
        VariableDetails,
    )

    manager = get_auth_manager()
    may = set()
    if manager.is_authorized_variable(
        method="PUT", details=VariableDetails(key=VARIABLE), user=user
    ):
        may.add(EDIT_SETTINGS)
    if manager.is_authorized_dag(
        method="POST",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=REPROCESS_DAG),
        user=user,
    ):
        may.add(REPROCESS)
    return frozenset(may)


def session_jwt(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The JWT this request was authenticated with: the bearer token, else the UI's cookie."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


async def actor(
    request: Request,
    user=Depends(api_user),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Actor:
    """The authenticated user of a request with the actions they may take."""
    return Actor(user.get_name(), session_jwt(request, credentials), allowed_actions(user))


def require(actor: Actor, action: str) -> None:
    """403 naming the missing right unless ``actor`` may take ``action``."""
    if action not in actor.may:
        what = {
            EDIT_SETTINGS: f"edit the Airflow Variable {VARIABLE}",
            REPROCESS: f"trigger the DAG {REPROCESS_DAG}",
        }[action]
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"user {actor.username} may not {what} (Airflow says no)"
        )
