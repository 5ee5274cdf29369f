"""Where rank 0's work items come from: a whole run at once, or a live run chunk by chunk.

A :class:`RunFeed` hands out every event of a concluded run in one go. A :class:`LiveFeed`
follows a run still being acquired: each :meth:`~LiveFeed.poll` (at most every
``poll_seconds``) adds the chunks whose marker has appeared and returns their events; the run
ends when ``CONCLUDED.json`` is there, and is stalled when no chunk came for ``timeout`` seconds
before that.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kernels.foreign import ForeignRun
from kernels.io.live_run import extend_run, ready_chunks
from kernels.io.marker import MarkerError
from kernels.io.runformat import Run, RunFormatError

Item = tuple[int, int]
POLL_SECONDS = 0.25  # a chunk of 250 frames at 120 Hz is 2 s: poll well within that


def chunk_events(run: Run, first: int) -> list[Item]:
    """The work items of chunks ``first``, ``first + 1``, ... of ``run``."""
    return [(c, e) for c in range(first, len(run.chunks)) for e in range(run.chunks[c].n_events)]


class RunFeed:
    """Every event of a concluded run, on the first poll."""

    stalled = False
    error: Exception | None = None
    poll_seconds = 0.0

    def __init__(self, run: Run | ForeignRun):
        self._items = run.events

    def poll(self) -> list[Item]:
        items, self._items = self._items, []
        return items

    @property
    def ended(self) -> bool:
        return True


class LiveFeed:
    """The events of a run being acquired, each chunk's as its marker appears.

    Parameters
    ----------
    run : Run
        The run opened with its readable chunks; their events are the first poll's.
    timeout : float
        Seconds without a new chunk (and no run marker) after which the run is stalled.
    """

    def __init__(
        self,
        run: Run,
        timeout: float,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.run, self.timeout, self.poll_seconds, self.clock = run, timeout, poll_seconds, clock
        self.concluded = False
        self.error: Exception | None = None  # a bad marker or chunk: the job hands out no more
        self._handed = 0  # chunks whose events were returned
        self._last_new = self._next_poll = clock()

    def poll(self) -> list[Item]:
        """The events of the chunks that became readable since the last poll.

        A malformed chunk marker or chunk (:class:`MarkerError`, :class:`RunFormatError`,
        naming the file) ends the feed and is kept in :attr:`error`.
        """
        now = self.clock()
        if self.concluded or self.error or (self._handed and now < self._next_poll):
            return []
        self._next_poll = now + self.poll_seconds
        try:
            added, self.concluded = extend_run(self.run)
        except (MarkerError, RunFormatError) as exc:  # kept: what was processed is published
            self.error = exc
            return []
        if added:
            self._last_new = now
        items = chunk_events(self.run, self._handed)
        self._handed = len(self.run.chunks)
        return items

    @property
    def ended(self) -> bool:
        """Every chunk of the run has been handed out, none came for too long, or a bad one."""
        return self.concluded or self.stalled or self.error is not None

    @property
    def stalled(self) -> bool:
        return not self.concluded and self.clock() - self._last_new >= self.timeout


def wait_for_first_chunk(run_dir, timeout: float, poll_seconds: float = POLL_SECONDS) -> bool:
    """Wait until chunk 0 of a live run is readable (or the run concluded); False after
    ``timeout`` seconds without.

    Raises
    ------
    MarkerError
        A malformed chunk marker, naming the file.
    """
    deadline = time.monotonic() + timeout
    while True:
        ready = ready_chunks(run_dir)
        if ready.indexes or ready.concluded:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_seconds)
