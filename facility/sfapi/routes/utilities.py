"""``/utilities``: ls, download, upload and (bounded) commands on a machine."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from ..center import RequestError
from .deps import Machine, Svc, User, api_error, task_answer

router = APIRouter(prefix="/utilities")


@router.get("/ls/{machine}")
@router.get("/ls/{machine}/{path:path}")
def ls(machine: Machine, user: User, svc: Svc, path: str = "/"):
    try:
        entries = svc.center.ls(user, machine.value, path)
    except RequestError as exc:
        return api_error(str(exc), entries=[])
    return {"status": "OK", "entries": entries, "error": None}


@router.get("/download/{machine}/{path:path}")
def download(machine: Machine, path: str, user: User, svc: Svc, binary: bool = False):
    try:
        data, is_binary = svc.center.download(user, machine.value, path, binary)
    except RequestError as exc:
        return api_error(str(exc), file=None, is_binary=binary)
    return {"status": "OK", "file": data, "is_binary": is_binary, "error": None}


def too_large(limit: int) -> JSONResponse:
    """HTTP 413 with the API's error body."""
    body = api_error(f"File too large: the limit is {limit} bytes", output=None)
    return JSONResponse(body, status_code=413)


MISSING_FILE = {
    "detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}]
}


@router.put("/upload/{machine}/{path:path}")
async def upload(machine: Machine, path: str, user: User, svc: Svc, request: Request):
    """Store the multipart field ``file`` (the body was bounded while it streamed in)."""
    limit = svc.config.max_upload_bytes
    form = await request.form(max_files=1, max_fields=4)
    upload_file = form.get("file")
    if upload_file is None or isinstance(upload_file, str):
        return JSONResponse(MISSING_FILE, status_code=422)
    if upload_file.size is not None and upload_file.size > limit:
        return too_large(limit)
    try:
        written = svc.center.upload(user, machine.value, path, upload_file.file)
    except RequestError as exc:
        return api_error(str(exc), output=None)
    return {"status": "OK", "output": f"File uploaded to {written}", "error": None}


@router.post("/command/{machine}")
def command(machine: Machine, user: User, svc: Svc, executable: Annotated[str, Form()]):
    """A task running one allowed command; HTTP 429 while ``max_commands`` already run."""
    if not svc.commands.acquire(blocking=False):
        limit = svc.config.max_commands
        body = api_error(f"too many commands running (at most {limit}); try again later")
        return JSONResponse(body, status_code=429)
    task = svc.tasks.create(user.user)

    def work() -> dict:
        try:
            return svc.center.run_command(user, machine.value, executable)
        except RequestError as exc:
            return {"status": "error", "output": None, "error": str(exc)}

    def run() -> None:
        try:
            svc.tasks.run(task, work, {"output": None})
        finally:
            svc.commands.release()

    threading.Thread(target=run, name=f"command-{task.id}", daemon=True).start()
    return task_answer(task.id)
