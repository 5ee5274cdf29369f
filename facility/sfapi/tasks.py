"""The API's asynchronous tasks: each submit or command returns a task id the caller polls.

A task is ``new`` until its work ends (``completed``, with an error result if the work failed),
or until it is cancelled while still waiting. Work claims its task first, so a cancelled task
never runs and a running one cannot be cancelled.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

TASK_STATES = ("new", "completed", "failed", "cancelled")


@dataclass
class Task:
    """One task; ``result`` is the JSON-encoded string the real API returns."""

    id: str
    user: str
    status: str = "new"
    result: str | None = None
    claimed: bool = False

    def as_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "result": self.result}


class TaskStore:
    """Thread-safe tasks by id, each visible only to the user who created it."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._next = 1
        self._lock = threading.Lock()

    def create(self, user: str) -> Task:
        with self._lock:
            task = Task(str(self._next), user)
            self._tasks[task.id] = task
            self._next += 1
        return task

    def claim(self, task: Task) -> bool:
        """Mark ``task`` as being worked on; False if it was cancelled (then do nothing)."""
        with self._lock:
            if task.status != "new" or task.claimed:
                return False
            task.claimed = True
            return True

    def cancel(self, task: Task) -> None:
        """Cancel ``task`` if its work has not started; a started or finished task is unchanged."""
        with self._lock:
            if task.status == "new" and not task.claimed:
                task.status = "cancelled"

    def finish(self, task: Task, result: dict) -> None:
        """Store ``result`` (encoded as JSON text) and mark ``task`` completed.

        Failures are completed tasks whose result says ``"status": "error"``, as the real API
        reports a refused sbatch.
        """
        with self._lock:
            task.result = json.dumps(result)
            task.status = "completed"

    def run(self, task: Task, work: Callable[[], dict], failure: dict) -> None:
        """Claim ``task``, do ``work`` and finish the task with its result, whatever happens.

        An unexpected exception finishes the task with ``failure`` plus its message, so no task
        is left ``new`` by a bug; ``work`` raises only for what it does not foresee.
        """
        if not self.claim(task):
            return
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 — the task must end, whatever the work did
            log.exception("task %s failed", task.id)
            result = {**failure, "status": "error", "error": f"internal error: {exc}"}
        self.finish(task, result)

    def get(self, user: str, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.user == user else None

    def of_user(self, user: str) -> list[Task]:
        return [t for t in list(self._tasks.values()) if t.user == user]
