"""What every router shares: the emulator's services, the caller's account, the API's shapes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from ..auth import TokenService, Unauthorized
from ..center import Center
from ..center_status import CenterStatus
from ..config import Account, EmulatorConfig
from ..faults import FaultInjector
from ..submissions import SubmissionQueue
from ..tasks import TaskStore

API_PREFIX = "/api/v1.2"
TOKEN_PATH = "/oauth2/token"


class Machine(StrEnum):
    """The machine names the real API accepts in paths."""

    perlmutter = "perlmutter"
    dtns = "dtns"
    dtn01 = "dtn01"


@dataclass
class Services:
    """The parts of one emulator the routes use (``app.state.services``)."""

    config: EmulatorConfig
    center: Center
    tokens: TokenService
    status: CenterStatus
    tasks: TaskStore
    faults: FaultInjector
    submissions: SubmissionQueue
    commands: threading.BoundedSemaphore
    admin_token: str | None


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


def current_account(svc: Svc, authorization: Annotated[str | None, Header()] = None) -> Account:
    """The account of the request's bearer token; HTTP 401 without a valid one."""
    try:
        return svc.tokens.account_for(authorization)
    except Unauthorized as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def require_admin(svc: Svc, authorization: Annotated[str | None, Header()] = None) -> None:
    if svc.admin_token is None or authorization != f"Bearer {svc.admin_token}":
        raise HTTPException(403, "admin token required")


User = Annotated[Account, Depends(current_account)]


def api_error(message: str, **extra: Any) -> dict:
    """The real API's error body: HTTP 200 with ``status`` ERROR (plus keys models require)."""
    return {"status": "ERROR", "error": message, **extra}


def task_answer(task_id: str) -> dict:
    return {"task_id": task_id, "status": "OK", "error": None}
