"""HTTP routes of the emulated Superfacility API v1.2 (FastAPI).

Paths, parameters and JSON shapes follow the real API, including its habit of answering many
errors with HTTP 200 and ``{"status": "ERROR", "error": ...}``; unknown machines and malformed
requests get FastAPI's 422 validation error, as the real (FastAPI) service gives. Admin routes
under ``/_emulator`` (admin token only) set system status, schedule outages and inject faults.
"""

import re
import threading
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, FastAPI, Form, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .auth import OAuthError, TokenService, Unauthorized
from .center import Center, RequestError
from .center_status import CenterStatus, Outage
from .config import Account, EmulatorConfig
from .faults import ADMIN_PREFIX, FaultInjector, FaultMiddleware, FaultRule
from .tasks import TaskStore

API_PREFIX = "/api/v1.2"
TOKEN_PATH = "/oauth2/token"


class Machine(StrEnum):
    """The machine names the real API accepts in paths."""

    perlmutter = "perlmutter"
    dtns = "dtns"
    dtn01 = "dtn01"


class PathNormalizer:
    """Collapse ``//`` and drop a trailing ``/`` so ``/account/`` and ``//status`` route directly."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = re.sub("/{2,}", "/", scope["path"])
            scope = dict(scope, path=path.rstrip("/") if len(path) > 1 else path)
        await self.app(scope, receive, send)


class StatusUpdate(BaseModel):
    status: str
    notes: list[str] = []


def _error(message: str, **extra) -> dict:
    return {"status": "ERROR", "error": message, **extra}


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
    status = CenterStatus()
    tasks = TaskStore()
    faults = FaultInjector()

    @asynccontextmanager
    async def lifespan(app):
        yield
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
    app.state.center, app.state.status, app.state.faults = center, status, faults

    def account(authorization: Annotated[str | None, Header()] = None) -> Account:
        try:
            return tokens.account_for(authorization)
        except Unauthorized as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if admin_token is None or authorization != f"Bearer {admin_token}":
            raise HTTPException(403, "admin token required")

    User = Annotated[Account, Depends(account)]

    # --- auth ------------------------------------------------------------------------------

    @app.post(TOKEN_PATH)
    async def token(request: Request):
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        try:
            return tokens.issue(form, str(request.url).split("?")[0])
        except OAuthError as exc:
            return JSONResponse(
                {"error": exc.code, "error_description": exc.description},
                status_code=401 if exc.code == "invalid_client" else 400,
            )

    # --- status ----------------------------------------------------------------------------

    @app.get(API_PREFIX + "/status")
    def all_status():
        return [status.status(n) for n in status.names()]

    def _outages(name: str | None, planned: bool):
        if name is None:
            return [status.outages(n, planned) for n in status.names()]
        if not status.known(name):
            raise HTTPException(404, f"Unknown system: {name}")
        return status.outages(name, planned)

    @app.get(API_PREFIX + "/status/outages")
    def all_outages():
        return _outages(None, planned=False)

    @app.get(API_PREFIX + "/status/outages/planned")
    def all_planned_outages():
        return _outages(None, planned=True)

    @app.get(API_PREFIX + "/status/outages/planned/{name}")
    def planned_outages(name: str):
        return _outages(name, planned=True)

    @app.get(API_PREFIX + "/status/outages/{name}")
    def outages(name: str):
        return _outages(name, planned=False)

    @app.get(API_PREFIX + "/status/notes")
    def all_notes():
        return [[] for _ in status.names()]

    @app.get(API_PREFIX + "/status/notes/{name}")
    def notes(name: str):
        return []

    @app.get(API_PREFIX + "/status/{name}")
    def system_status(name: str):
        if not status.known(name):
            raise HTTPException(404, f"Unknown system: {name}")
        return status.status(name)

    # --- account ---------------------------------------------------------------------------

    @app.get(API_PREFIX + "/account")
    def whoami(user: User, username: str | None = None):
        if username not in (None, user.user):
            raise HTTPException(403, "Can only fetch the authenticated user")
        return {
            "uid": user.uid,
            "name": user.user,
            "firstname": user.user,
            "lastname": "",
            "middlename": None,
            "workphone": None,
            "otherPhones": None,
            "email": f"{user.user}@sfxflow.invalid",
        }

    @app.get(API_PREFIX + "/account/projects")
    def projects(user: User):
        return [
            {
                "id": 1,
                "description": "sfxflow emulated project",
                "repo_name": "m0000",
                "iris_role": "user",
                "hours_given": 1e6,
                "hours_used": 0.0,
            }
        ]

    # --- compute ---------------------------------------------------------------------------

    @app.post(API_PREFIX + "/compute/jobs/{machine}")
    def submit_job(
        machine: Machine,
        user: User,
        job: Annotated[str, Form()],
        isPath: Annotated[bool, Form()],
        args: Annotated[list[str] | None, Form()] = None,
    ):
        task = tasks.create(user.user)
        if faults.take(("task_stuck",), "POST", f"{API_PREFIX}/compute/jobs/{machine.value}"):
            return {"task_id": task.id, "status": "OK", "error": None}
        try:
            jobid = center.submit(user, machine.value, job, isPath, args or [])
            tasks.finish(task, {"status": "ok", "jobid": jobid, "error": None})
        except RequestError as exc:
            tasks.finish(task, {"status": "error", "jobid": None, "error": str(exc)})
        return {"task_id": task.id, "status": "OK", "error": None}

    @app.get(API_PREFIX + "/compute/jobs/{machine}")
    def list_jobs(
        machine: Machine,
        user: User,
        sacct: bool = False,
        cached: bool = True,
        index: Annotated[int, Query(ge=0)] = 0,
        kwargs: Annotated[list[str] | None, Query()] = None,
    ):
        # `cached` is accepted as the real API does; the emulator always answers fresh.
        try:
            rows = center.job_rows(user, machine.value, sacct, kwargs or [], index)
        except RequestError as exc:
            return _error(str(exc), output=[])
        return {"status": "OK", "output": rows, "error": None}

    @app.get(API_PREFIX + "/compute/jobs/{machine}/{jobid}")
    def get_job(machine: Machine, jobid: str, user: User, sacct: bool = False):
        rows = center.job_rows(user, machine.value, sacct, [f"jobid={jobid}"])
        return {"status": "OK", "output": rows, "error": None}

    @app.delete(API_PREFIX + "/compute/jobs/{machine}/{jobid}")
    def cancel_job(machine: Machine, jobid: str, user: User):
        try:
            center.cancel(user, machine.value, jobid)
        except RequestError as exc:
            return _error(str(exc), output="")
        return {"status": "OK", "output": "", "error": None}

    # --- tasks -----------------------------------------------------------------------------

    @app.get(API_PREFIX + "/tasks")
    def list_tasks(user: User):
        return {"tasks": [t.as_dict() for t in tasks.of_user(user.user)]}

    @app.get(API_PREFIX + "/tasks/{task_id}")
    def get_task(task_id: str, user: User):
        task = tasks.get(user.user, task_id)
        if task is None:
            raise HTTPException(404, f"Task not found: {task_id}")
        return task.as_dict()

    @app.delete(API_PREFIX + "/tasks/{task_id}")
    def cancel_task(task_id: str, user: User):
        task = tasks.get(user.user, task_id)
        if task is None:
            raise HTTPException(404, f"Task not found: {task_id}")
        if task.status == "new":
            task.status = "cancelled"
        return task.as_dict()

    # --- utilities -------------------------------------------------------------------------

    @app.get(API_PREFIX + "/utilities/ls/{machine}")
    @app.get(API_PREFIX + "/utilities/ls/{machine}/{path:path}")
    def ls(machine: Machine, user: User, path: str = "/"):
        try:
            return {"status": "OK", "entries": center.ls(user, machine.value, path), "error": None}
        except RequestError as exc:
            return _error(str(exc), entries=[])

    @app.get(API_PREFIX + "/utilities/download/{machine}/{path:path}")
    def download(machine: Machine, path: str, user: User, binary: bool = False):
        try:
            data, is_binary = center.download(user, machine.value, path, binary)
        except RequestError as exc:
            return _error(str(exc), file=None, is_binary=binary)
        return {"status": "OK", "file": data, "is_binary": is_binary, "error": None}

    @app.put(API_PREFIX + "/utilities/upload/{machine}/{path:path}")
    async def upload(machine: Machine, path: str, user: User, request: Request):
        limit = config.max_upload_bytes
        too_large = _error(f"File too large: the limit is {limit} bytes", output=None)
        if int(request.headers.get("content-length") or 0) > limit + 64 * 1024:
            return JSONResponse(too_large, status_code=413)
        form = await request.form(max_files=1, max_fields=4)
        upload_file = form.get("file")
        if upload_file is None or isinstance(upload_file, str):
            return JSONResponse(
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "file"],
                            "msg": "Field required",
                            "input": None,
                        }
                    ]
                },
                status_code=422,
            )
        if upload_file.size is not None and upload_file.size > limit:
            return JSONResponse(too_large, status_code=413)
        try:
            written = center.upload(user, machine.value, path, upload_file.file)
        except RequestError as exc:
            return _error(str(exc), output=None)
        return {"status": "OK", "output": f"File uploaded to {written}", "error": None}

    @app.post(API_PREFIX + "/utilities/command/{machine}")
    def command(machine: Machine, user: User, executable: Annotated[str, Form()]):
        task = tasks.create(user.user)

        def run():
            try:
                tasks.finish(task, center.run_command(user, machine.value, executable))
            except RequestError as exc:
                tasks.finish(task, {"status": "error", "output": None, "error": str(exc)})

        threading.Thread(target=run, daemon=True).start()
        return {"task_id": task.id, "status": "OK", "error": None}

    # --- admin -----------------------------------------------------------------------------

    Admin = Depends(admin)

    @app.put(ADMIN_PREFIX + "/status/{name}", dependencies=[Admin])
    def set_status(name: str, body: StatusUpdate):
        try:
            status.set_status(name, body.status, body.notes)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return status.status(name)

    @app.post(ADMIN_PREFIX + "/outages", dependencies=[Admin])
    def add_outage(body: Outage):
        try:
            status.add_outage(body)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"status": "OK"}

    @app.delete(ADMIN_PREFIX + "/outages", dependencies=[Admin])
    def clear_outages():
        status.clear_outages()
        return {"status": "OK"}

    @app.post(ADMIN_PREFIX + "/faults", dependencies=[Admin])
    def add_fault(body: FaultRule):
        try:
            faults.add(body)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"status": "OK"}

    @app.delete(ADMIN_PREFIX + "/faults", dependencies=[Admin])
    def clear_faults():
        faults.clear()
        return {"status": "OK"}

    app.add_middleware(FaultMiddleware, faults=faults)
    app.add_middleware(PathNormalizer)
    return app
