"""Pipeline states of the results DB: where each run's pipeline of a trial stands."""

from __future__ import annotations

import time

from .connection import Connection


class StateQueries(Connection):
    """One state per run and trial, written by the orchestration as a pipeline moves."""

    def record_pipeline_state(
        self,
        run_id: int,
        trial_id: int,
        state: str,
        detail: str = "",
        log_url: str = "",
        total: int | None = None,
    ) -> None:
        """Set the pipeline state of a run and trial; a known ``total`` (images) is kept."""

        def work(cursor):
            cursor.execute(
                self.dialect.insert_ignore(
                    "pipeline_states",
                    ("run_id", "trial_id", "state", "detail", "log_url", "updated"),
                ),
                (run_id, trial_id, state, "", "", 0.0),
            )
            cursor.execute(
                self._q(
                    "UPDATE pipeline_states SET state=?, detail=?, log_url=?, "
                    "total=COALESCE(?, total), updated=? WHERE run_id=? AND trial_id=?"
                ),
                (state, detail[:1024], log_url[:1024], total, time.time(), run_id, trial_id),
            )

        self.transaction(work)

    def pipeline_states(self, trial_id: int) -> dict[int, dict]:
        """run id -> state, detail, log_url, total, updated of every pipeline of a trial."""
        keys = ("state", "detail", "log_url", "total", "updated")
        rows = self._select(
            f"SELECT run_id, {', '.join(keys)} FROM pipeline_states WHERE trial_id=?", (trial_id,)
        )
        return {int(row[0]): dict(zip(keys, row[1:])) for row in rows}
