"""``/tasks``: the caller's asynchronous tasks (submissions and commands)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from .deps import Svc, User

router = APIRouter(prefix="/tasks")


@router.get("")
def list_tasks(user: User, svc: Svc):
    return {"tasks": [t.as_dict() for t in svc.tasks.of_user(user.user)]}


@router.get("/{task_id}")
def get_task(task_id: str, user: User, svc: Svc):
    task = svc.tasks.get(user.user, task_id)
    if task is None:
        raise HTTPException(404, f"Task not found: {task_id}")
    return task.as_dict()


@router.delete("/{task_id}")
def cancel_task(task_id: str, user: User, svc: Svc):
    """Cancel a task whose work has not started; the task as it now is."""
    task = svc.tasks.get(user.user, task_id)
    if task is None:
        raise HTTPException(404, f"Task not found: {task_id}")
    svc.tasks.cancel(task)
    return task.as_dict()
