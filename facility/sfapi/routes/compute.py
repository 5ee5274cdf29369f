"""``/compute/jobs``: submit (asynchronously, as the real API), list and cancel batch jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query

from ..center import RequestError
from .deps import API_PREFIX, Machine, Svc, User, api_error, task_answer

router = APIRouter(prefix="/compute/jobs")


@router.post("/{machine}")
def submit_job(
    machine: Machine,
    user: User,
    svc: Svc,
    job: Annotated[str, Form()],
    isPath: Annotated[bool, Form()],
    args: Annotated[list[str] | None, Form()] = None,
):
    """A task at once; its ``sbatch`` runs after the configured (or injected) delay."""
    task = svc.tasks.create(user.user)
    path = f"{API_PREFIX}/compute/jobs/{machine.value}"
    if svc.faults.take(("task_stuck",), "POST", path):
        return task_answer(task.id)
    delayed = svc.faults.take(("submit_delay",), "POST", path)
    delay = delayed.seconds if delayed is not None else svc.config.submit_delay_s

    def sbatch() -> dict:
        try:
            jobid = svc.center.submit(user, machine.value, job, isPath, args or [])
        except RequestError as exc:
            return {"status": "error", "jobid": None, "error": str(exc)}
        return {"status": "ok", "jobid": jobid, "error": None}

    svc.submissions.add(task, delay, sbatch)
    return task_answer(task.id)


@router.get("/{machine}")
def list_jobs(
    machine: Machine,
    user: User,
    svc: Svc,
    sacct: bool = False,
    cached: bool = True,
    index: Annotated[int, Query(ge=0)] = 0,
    kwargs: Annotated[list[str] | None, Query()] = None,
):
    # `cached` is accepted as the real API does; the emulator always answers fresh.
    try:
        rows = svc.center.job_rows(user, machine.value, sacct, kwargs or [], index)
    except RequestError as exc:
        return api_error(str(exc), output=[])
    return {"status": "OK", "output": rows, "error": None}


@router.get("/{machine}/{jobid}")
def get_job(machine: Machine, jobid: str, user: User, svc: Svc, sacct: bool = False):
    rows = svc.center.job_rows(user, machine.value, sacct, [f"jobid={jobid}"])
    return {"status": "OK", "output": rows, "error": None}


@router.delete("/{machine}/{jobid}")
def cancel_job(machine: Machine, jobid: str, user: User, svc: Svc):
    try:
        svc.center.cancel(user, machine.value, jobid)
    except RequestError as exc:
        return api_error(str(exc), output="")
    return {"status": "OK", "output": "", "error": None}
