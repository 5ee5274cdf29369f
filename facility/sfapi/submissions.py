"""Asynchronous job submission, as at NERSC: the POST returns a task, ``sbatch`` runs later.

One worker thread runs each submission's ``sbatch`` once its delay has passed, in due order. A
task cancelled before then never runs; one whose delay is 0 runs before the POST is answered.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from .tasks import Task, TaskStore

SUBMIT_FAILURE = {"jobid": None}


class SubmissionQueue:
    """Submissions waiting for their ``sbatch``.

    Parameters
    ----------
    tasks : TaskStore
        Where each submission's task is claimed and finished.
    """

    def __init__(self, tasks: TaskStore):
        self._tasks = tasks
        self._due: list[tuple[float, int, Task, Callable[[], dict]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="sbatch-queue", daemon=True)
        self._thread.start()

    def add(self, task: Task, delay_s: float, sbatch: Callable[[], dict]) -> None:
        """Run ``sbatch`` for ``task`` after ``delay_s`` seconds (at once if 0)."""
        if delay_s <= 0:
            self._tasks.run(task, sbatch, SUBMIT_FAILURE)
            return
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay_s, next(self._order), task, sbatch))
            self._wake.notify()

    def _next(self) -> tuple[Task, Callable[[], dict]] | None:
        with self._wake:
            while not self._stopped:
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    _, _, task, sbatch = heapq.heappop(self._due)
                    return task, sbatch
                self._wake.wait(self._due[0][0] - now if self._due else None)
        return None

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            self._tasks.run(item[0], item[1], SUBMIT_FAILURE)

    def close(self) -> None:
        """Stop the worker; submissions still waiting stay ``new``, as after a crash."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)
