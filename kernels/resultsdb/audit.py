"""The audit log of the results DB: every change made from the dashboard, with who and when."""

from __future__ import annotations

import json
import time

from .connection import Connection


class AuditQueries(Connection):
    """Append-only rows of (time, user, experiment, action, detail, outcome)."""

    def record_action(
        self, username: str, experiment: str, action: str, detail: dict, outcome: str
    ) -> int:
        """Append one action (``detail``: JSON-able names and numbers, never a secret); its id."""

        def work(cursor):
            cursor.execute(
                self._q(
                    "INSERT INTO audit_log (at, username, experiment, action, detail, outcome) "
                    "VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (time.time(), username, experiment, action, json.dumps(detail), outcome[:1024]),
            )
            return int(cursor.lastrowid)

        return self.transaction(work)

    def actions(self, experiment: str, limit: int = 50) -> list[dict]:
        """The newest ``limit`` actions on ``experiment``, newest first."""
        keys = ("id", "at", "username", "action", "detail", "outcome")
        rows = self._select(
            f"SELECT {', '.join(keys)} FROM audit_log WHERE experiment=? ORDER BY id DESC LIMIT ?",
            (experiment, int(limit)),
        )
        return [{**dict(zip(keys, row)), "detail": json.loads(row[4])} for row in rows]
