"""Records of the results DB: facility jobs, transfers, run summaries, merged statistics."""

from __future__ import annotations

import json
import math
import time

from .connection import Connection, canonical_json
from .migrations import FREEZE_SUMMARY_COUNTS

RUN_SO_FAR_STATS = (
    "images_merged",
    "observations",
    "n_unique",
    "completeness",
    "cc_half",
    "mean_i_over_sigma",
    "multiplicity",
    "d_min",
)


def _finite_or_none(value):
    """A statistic as stored: NaN (nothing to measure yet) becomes NULL."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


class RecordQueries(Connection):
    """What happened to a run: its jobs, its transfer, its summaries and merges."""

    def record_job(
        self,
        run_id: int,
        trial_id: int,
        machine: str,
        job_id: str,
        state: str,
        submitted: float | None = None,
        started: float | None = None,
        ended: float | None = None,
    ) -> None:
        """Create or update the facility job ``(machine, job_id)``; known times are kept."""

        def work(cursor):
            cursor.execute(
                self.dialect.insert_ignore(
                    "jobs", ("run_id", "trial_id", "machine", "job_id", "state")
                ),
                (run_id, trial_id, machine, job_id, state),
            )
            cursor.execute(
                self._q(
                    "UPDATE jobs SET state=?, submitted=COALESCE(?, submitted), started=COALESCE(?, started), "
                    "ended=COALESCE(?, ended) WHERE machine=? AND job_id=?"
                ),
                (state, submitted, started, ended, machine, job_id),
            )

        self.transaction(work)

    def jobs(self, run_id: int, trial_id: int) -> list[dict]:
        """The jobs of a run and trial, oldest first."""
        rows = self._select(
            "SELECT machine, job_id, state, submitted, started, ended FROM jobs "
            "WHERE run_id=? AND trial_id=? ORDER BY id",
            (run_id, trial_id),
        )
        keys = ("machine", "job_id", "state", "submitted", "started", "ended")
        return [dict(zip(keys, row)) for row in rows]

    def record_transfer(self, run_id: int, n_bytes: int, seconds: float, rate: float) -> None:
        """Record (or replace) how a run reached the center: its size in bytes, how long the
        transfer took and the rate of the bytes it copied (files already there are skipped)."""
        columns = ("run_id", "n_bytes", "seconds", "rate", "recorded")
        values = (run_id, int(n_bytes), float(seconds), float(rate), time.time())
        self.transaction(
            lambda cursor: cursor.execute(
                self.dialect.upsert("transfers", columns, ("run_id",)), values
            )
        )

    def transfer(self, run_id: int) -> dict | None:
        """The run's transfer to the center as recorded, or None."""
        rows = self._select(
            "SELECT n_bytes, seconds, rate, recorded FROM transfers WHERE run_id=?", (run_id,)
        )
        return dict(zip(("n_bytes", "seconds", "rate", "recorded"), rows[0])) if rows else None

    def record_run_summary(
        self,
        run_id: int,
        trial_id: int,
        status: str,
        funnel: dict,
        timings: dict,
        finished: float | None = None,
    ) -> None:
        """Store (or replace) the summary of one processing of a run with a trial, with the
        run's image counts as its image rows have them now (the runs table reads those)."""
        columns = ("run_id", "trial_id", "status", "funnel", "timings", "finished")
        values = (
            run_id,
            trial_id,
            status,
            canonical_json(funnel),
            canonical_json(timings),
            finished if finished is not None else time.time(),
        )

        def work(cursor):
            cursor.execute(
                self.dialect.upsert("run_summaries", columns, ("run_id", "trial_id")), values
            )
            cursor.execute(
                self._q(FREEZE_SUMMARY_COUNTS + " WHERE run_id=? AND trial_id=?"),
                (run_id, trial_id),
            )

        self.transaction(work)

    def record_run_so_far(
        self, run_id: int, trial_id: int, stats: dict, final: bool, at: float | None = None
    ) -> None:
        """Store (or replace) the run-so-far merge of a run and trial (NaN stored as NULL)."""
        values = [_finite_or_none(stats[k]) for k in RUN_SO_FAR_STATS]
        columns = ("run_id", "trial_id", *RUN_SO_FAR_STATS, "final", "updated")
        row = (run_id, trial_id, *values, int(final), at if at is not None else time.time())
        self.transaction(
            lambda cursor: cursor.execute(
                self.dialect.upsert("run_so_far", columns, ("run_id", "trial_id")), row
            )
        )

    def run_so_far(self, run_id: int, trial_id: int) -> dict | None:
        """The newest run-so-far merge of a run and trial (``final``, ``updated``), or None."""
        columns = (*RUN_SO_FAR_STATS, "final", "updated")
        rows = self._select(
            f"SELECT {', '.join(columns)} FROM run_so_far WHERE run_id=? AND trial_id=?",
            (run_id, trial_id),
        )
        if not rows:
            return None
        record = dict(zip(columns, rows[0]))
        record["final"] = bool(record["final"])
        return record

    def run_summary(self, run_id: int, trial_id: int) -> dict | None:
        """The stored summary of a run and trial, or None."""
        rows = self._select(
            "SELECT status, funnel, timings, finished FROM run_summaries "
            "WHERE run_id=? AND trial_id=?",
            (run_id, trial_id),
        )
        if not rows:
            return None
        status, funnel, timings, finished = rows[0]
        return {
            "status": status,
            "funnel": json.loads(funnel),
            "timings": json.loads(timings),
            "finished": finished,
        }

    def record_merge_stats(
        self,
        trial_id: int,
        overall: dict,
        shells: list[dict],
        *,
        dataset_id: int | None = None,
        run_id: int | None = None,
    ) -> None:
        """Store (or replace) merged statistics of one run or one dataset for a trial."""
        scope, scope_id = _merge_scope(dataset_id, run_id)
        columns = ("trial_id", "scope", "scope_id", "overall", "shells", "updated")
        values = (
            trial_id,
            scope,
            scope_id,
            canonical_json(overall),
            canonical_json(shells),
            time.time(),
        )
        self.transaction(
            lambda cursor: cursor.execute(
                self.dialect.upsert("merge_stats", columns, ("trial_id", "scope", "scope_id")),
                values,
            )
        )

    def merges_updated(self, trial_id: int) -> float:
        """When merged statistics of the trial (any run or dataset) last changed; 0.0 if never."""
        rows = self._select("SELECT MAX(updated) FROM merge_stats WHERE trial_id=?", (trial_id,))
        return float(rows[0][0] or 0.0)

    def merge_stats(
        self, trial_id: int, *, dataset_id: int | None = None, run_id: int | None = None
    ) -> dict | None:
        """Merged statistics ({"overall": ..., "shells": [...]}) or None."""
        scope, scope_id = _merge_scope(dataset_id, run_id)
        rows = self._select(
            "SELECT overall, shells FROM merge_stats WHERE trial_id=? AND scope=? AND scope_id=?",
            (trial_id, scope, scope_id),
        )
        return (
            {"overall": json.loads(rows[0][0]), "shells": json.loads(rows[0][1])} if rows else None
        )

    def run_merges(self, trial_id: int) -> dict[int, dict]:
        """run id -> merged statistics of that run, for every run the trial merged (one query)."""
        rows = self._select(
            "SELECT scope_id, overall, shells FROM merge_stats WHERE trial_id=? AND scope='run'",
            (trial_id,),
        )
        return {int(r): {"overall": json.loads(o), "shells": json.loads(s)} for r, o, s in rows}


def _merge_scope(dataset_id: int | None, run_id: int | None) -> tuple[str, int]:
    if (dataset_id is None) == (run_id is None):
        raise ValueError("merge statistics belong to exactly one of dataset_id or run_id")
    if dataset_id is not None:
        return "dataset", dataset_id
    assert run_id is not None  # exactly one of the two is given (checked above)
    return "run", run_id
