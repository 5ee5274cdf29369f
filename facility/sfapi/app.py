"""The emulated Superfacility API v1.2 (FastAPI): one router per concern, wired here.

Paths, parameters and JSON shapes follow the real API, including its habit of answering many
errors with HTTP 200 and ``{"status": "ERROR", "error": ...}``; unknown machines and malformed
requests get FastAPI's 422 validation error, as the real (FastAPI) service gives. Anything
unforeseen is still an error body (HTTP 500), never a bare traceback. Admin routes under
``/_emulator`` (admin token only) set system status, schedule outages and inject faults.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .auth import TokenService
from .center import Center
from .center_status import CenterStatus
from .config import Account, EmulatorConfig
from .faults import FaultInjector, FaultMiddleware
from .middleware import BodyLimit, PathNormalizer
from .routes import account, admin, compute, oauth, status, tasks, utilities
from .routes.deps import API_PREFIX, TOKEN_PATH, Services
from .submissions import SubmissionQueue
from .tasks import TaskStore

__all__ = ["API_PREFIX", "TOKEN_PATH", "create_app"]

log = logging.getLogger(__name__)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """The API's error body for a failure no route foresaw (logged with its traceback)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"status": "ERROR", "error": f"internal error: {type(exc).__name__}: {exc}"}
    return JSONResponse(body, status_code=500)


def create_app(
    config: EmulatorConfig,
    tokens: TokenService,
    accounts: list[Account],
    admin_token: str | None = None,
    center: Center | None = None,
) -> FastAPI:
    """Build the emulator's ASGI app.

    Parameters
    ----------
    config : EmulatorConfig
    tokens : TokenService
        Issues and checks bearer tokens.
    accounts : list of Account
        Every account, so their home directories exist before the first request.
    admin_token : str or None
        Bearer token of the ``/_emulator`` admin routes; ``None`` disables them.
    center : Center or None
        The center to serve (built from ``config`` when omitted).
    """
    center = center or Center(config)
    center.ensure_homes(accounts)
    task_store = TaskStore()
    services = Services(
        config=config,
        center=center,
        tokens=tokens,
        status=CenterStatus(),
        tasks=task_store,
        faults=FaultInjector(),
        submissions=SubmissionQueue(task_store),
        commands=threading.BoundedSemaphore(config.max_commands),
        admin_token=admin_token,
    )

    @asynccontextmanager
    async def lifespan(app):
        yield
        services.submissions.close()
        center.close()

    app = FastAPI(
        title="Superfacility API (sfxflow emulator)",
        version="1.2",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    app.include_router(oauth.router)
    for router in (status, account, compute, tasks, utilities):
        app.include_router(router.router, prefix=API_PREFIX)
    app.include_router(admin.router)
    app.add_exception_handler(Exception, internal_error)
    app.add_middleware(FaultMiddleware, faults=services.faults)
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes)
    app.add_middleware(PathNormalizer)
    return app
