"""The API's asynchronous tasks: each submit or command returns a task id the caller polls."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

TASK_STATES = ("new", "completed", "failed", "cancelled")


@dataclass
class Task:
    """One task; ``result`` is the JSON-encoded string the real API returns."""

    id: str
    user: str
    status: str = "new"
    result: str | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "result": self.result}


class TaskStore:
    """Thread-safe tasks by id, each visible only to the user who created it."""

    def __init__(self):
        self._tasks: dict[str, Task] = {}
        self._next = 1
        self._lock = threading.Lock()

    def create(self, user: str) -> Task:
        with self._lock:
            task = Task(str(self._next), user)
            self._tasks[task.id] = task
            self._next += 1
        return task

    def finish(self, task: Task, result: dict) -> None:
        """Store ``result`` (encoded as JSON text) and mark ``task`` completed.

        Failures are completed tasks whose result says ``"status": "error"``, as the real API
        reports a refused sbatch.
        """
        task.result = json.dumps(result)
        task.status = "completed"

    def get(self, user: str, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.user == user else None

    def of_user(self, user: str) -> list[Task]:
        return [t for t in list(self._tasks.values()) if t.user == user]
