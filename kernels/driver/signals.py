"""Preemption: SIGINT/SIGTERM (Slurm ``--signal``) ask every rank to stop between images."""

from __future__ import annotations

import signal


class StopFlag:
    """Set by SIGINT or SIGTERM; checked between images."""

    def __init__(self) -> None:
        self.reason = ""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.reason = signal.Signals(signum).name

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def __bool__(self) -> bool:
        return bool(self.reason)
