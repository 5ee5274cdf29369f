"""``ResultsDB``: the small API every room uses to write and read the results DB."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from kernels.weather import stage_segments

from .dialect import Dialect, dialect_for
from .migrations import apply_migrations
from .url import parse_db_url

log = logging.getLogger("kernels.resultsdb")
RETRY_ENV = "SFXFLOW_DB_RETRY_SECONDS"
T = TypeVar("T")

IMAGE_COLUMNS = (
    "run_id",
    "trial_id",
    "chunk",
    "event",
    "hit",
    "n_spots",
    "is_indexed",
    "n_refined",
    "n_integrated",
    "status",
    "reason",
    "mpi_rank",
    "host",
    "t_start",
    "timings",
)
IMAGE_KINDS = (
    "iiiiiiiiissisfj"  # per IMAGE_COLUMNS: i integer, f float, s string, j identifier-keyed JSON
)


class TrialParamsChangedError(ValueError):
    """A trial version already exists with other parameters (trials are immutable)."""


class UnknownNameError(LookupError):
    """An experiment, run, trial or dataset name that is not in the DB."""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ResultsDB:
    """One connection to the results DB (SQLite file or MySQL/MariaDB), schema applied.

    Parameters
    ----------
    url : str
        ``sqlite:///path/results.db`` or ``mysql://user@host:port/dbname`` (password from
        ``SFXFLOW_DB_PASSWORD_FILE`` / ``SFXFLOW_DB_PASSWORD``).
    retry_for : float, optional
        Seconds a transaction keeps retrying (reconnect + backoff) while the DB is
        unreachable before the error is raised; default ``SFXFLOW_DB_RETRY_SECONDS`` or
        600 (set it below the job's remaining time limit).
    read_only : bool
        A reader that never writes, not even when it connects: no schema migrations, a
        read-only session, and a missing SQLite file is an error rather than a new DB.

    Notes
    -----
    Every write is one transaction run by :meth:`transaction`, which reconnects and replays
    the whole transaction after a dropped connection; all writes are idempotent so a replay
    of a transaction that did commit changes nothing.
    """

    first_retry_delay = 0.2
    max_retry_delay = 5.0

    def __init__(self, url: str, retry_for: float | None = None, read_only: bool = False):
        self.url = parse_db_url(url)
        self.dialect: Dialect = dialect_for(self.url)
        self.retry_for = (
            retry_for if retry_for is not None else float(os.environ.get(RETRY_ENV, "600"))
        )
        self._conn = None
        self.read_only = read_only
        self._migrate = not read_only

    # -- connection and transactions -------------------------------------------------

    def _connection(self):
        if self._conn is None:
            self._conn = self.dialect.connect(read_only=self.read_only)
            if self._migrate:
                apply_migrations(self._conn, self.dialect)
                self._migrate = False
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken; closing is best effort
                pass

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        self._drop_connection()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connection_id(self) -> int | None:
        """The server-side connection id (MySQL) or None (SQLite); used to kill it in tests."""
        if self.dialect.name != "mysql":
            return None
        return self._connection().thread_id()

    def transaction(self, work: Callable[[Any], T], write: bool = True) -> T:
        """Run ``work(cursor)`` in one transaction, retrying it on transient errors.

        Transient errors (connection lost or killed, server restarting or unreachable,
        lock timeouts) lead to a reconnect and a replay of the whole transaction, with
        exponential backoff, for up to ``retry_for`` seconds; each retry logs a warning.
        Other errors roll back and propagate.
        """
        deadline = time.monotonic() + self.retry_for
        delay = self.first_retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                conn = self._connection()
                self.dialect.begin(conn, write)
                cursor = conn.cursor()
                try:
                    result = work(cursor)
                finally:
                    cursor.close()
                conn.commit()
                if attempt > 1:
                    log.warning(
                        "results DB %s: transaction succeeded after %d attempts",
                        self.url.redacted(),
                        attempt,
                    )
                return result
            except Exception as exc:
                transient = self.dialect.is_transient(exc)
                if transient or self._conn is None:
                    self._drop_connection()
                else:
                    self._rollback_quietly()
                if not transient or time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "results DB %s unavailable (%s: %s); reconnecting and retrying in %.1f s (attempt %d)",
                    self.url.redacted(),
                    type(exc).__name__,
                    exc,
                    delay,
                    attempt,
                )
                time.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)

    def _rollback_quietly(self) -> None:
        try:
            self._conn.rollback()
        except Exception:
            self._drop_connection()

    def _q(self, query: str) -> str:
        return self.dialect.sql(query)

    def _select(self, query: str, params: Sequence = ()) -> list[tuple]:
        def work(cursor):
            cursor.execute(self._q(query), tuple(params))
            return [tuple(row) for row in cursor.fetchall()]

        return self.transaction(work, write=False)

    def _ensure(
        self, cursor, table: str, key: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> int:
        """Insert a row unless its unique key exists; return its id (no race, no error)."""
        row = {**key, **(extra or {})}
        cursor.execute(self.dialect.insert_ignore(table, tuple(row)), tuple(row.values()))
        where = " AND ".join(f"{column}=?" for column in key)
        # a locking read: the row may come from a transaction that committed while this one
        # waited on the insert, after this transaction's snapshot was taken
        query = f"SELECT id FROM {table} WHERE {where}{self.dialect.latest_read}"
        cursor.execute(self._q(query), tuple(key.values()))
        return int(cursor.fetchone()[0])

    # -- catalogue: experiments, runs, trials, tags, datasets --------------------------

    def ensure_experiment(self, name: str) -> int:
        """Id of the experiment called ``name`` (created if new)."""
        return self.transaction(
            lambda c: self._ensure(c, "experiments", {"name": name}, {"created": time.time()})
        )

    def ensure_run(self, experiment: str, run: str, concluded: float | None = None) -> int:
        """Id of run ``run`` of ``experiment`` (both created if new).

        ``concluded`` (UNIX time the DAQ closed the run) is stored once and is the start of
        the turnaround shown on the dashboard.
        """

        def work(cursor):
            experiment_id = self._ensure(
                cursor, "experiments", {"name": experiment}, {"created": time.time()}
            )
            run_id = self._ensure(
                cursor,
                "runs",
                {"experiment_id": experiment_id, "name": run},
                {"created": time.time(), "concluded": concluded},
            )
            if concluded is not None:
                cursor.execute(
                    self._q("UPDATE runs SET concluded=? WHERE id=? AND concluded IS NULL"),
                    (concluded, run_id),
                )
            return run_id

        return self.transaction(work)

    def ensure_trial(self, name: str, params: dict, version: int = 1) -> int:
        """Id of trial ``name`` version ``version`` with parameters ``params``.

        Raises
        ------
        TrialParamsChangedError
            That version exists with different parameters; trials are immutable, so
            reprocessing with new parameters needs a new version.
        """
        text = canonical_json(params)
        digest = hashlib.sha256(text.encode()).hexdigest()

        def work(cursor):
            trial_id = self._ensure(
                cursor,
                "trials",
                {"name": name, "version": version},
                {"params": text, "params_sha256": digest, "created": time.time()},
            )
            cursor.execute(self._q("SELECT params_sha256 FROM trials WHERE id=?"), (trial_id,))
            if cursor.fetchone()[0] != digest:
                cursor.execute(self._q("SELECT MAX(version) FROM trials WHERE name=?"), (name,))
                newest = cursor.fetchone()[0]
                raise TrialParamsChangedError(
                    f"trial {name!r} version {version} already exists with different parameters; "
                    f"trials are immutable, use version {newest + 1}"
                )
            return trial_id

        return self.transaction(work)

    def get_trial(self, name: str, version: int | None = None) -> dict:
        """Trial ``name`` at ``version`` (default: the newest) as id/name/version/params."""
        query = "SELECT id, version, params FROM trials WHERE name=?"
        params: tuple = (name,)
        if version is not None:
            query, params = query + " AND version=?", (name, version)
        rows = self._select(query + " ORDER BY version DESC LIMIT 1", params)
        if not rows:
            raise UnknownNameError(
                f"no trial {name!r}" + (f" version {version}" if version else "")
            )
        trial_id, found_version, text = rows[0]
        return {"id": trial_id, "name": name, "version": found_version, "params": json.loads(text)}

    def experiments(self) -> list[str]:
        """Names of all experiments, newest first."""
        return [
            name
            for (name,) in self._select("SELECT name FROM experiments ORDER BY created DESC, name")
        ]

    def trials(self) -> list[dict]:
        """All trials as id/name/version, newest first."""
        rows = self._select("SELECT id, name, version FROM trials ORDER BY created DESC, id DESC")
        return [{"id": int(i), "name": name, "version": int(version)} for i, name, version in rows]

    def run_name(self, run_id: int) -> tuple[str, str] | None:
        """(experiment name, run name) of a run id, or None."""
        rows = self._select(
            "SELECT e.name, r.name FROM runs r JOIN experiments e ON e.id=r.experiment_id "
            "WHERE r.id=?",
            (run_id,),
        )
        return rows[0] if rows else None

    def tag_run(self, run_id: int, tag: str) -> None:
        """Attach ``tag`` to a run (tags belong to the run's experiment)."""

        def work(cursor):
            cursor.execute(self._q("SELECT experiment_id FROM runs WHERE id=?"), (run_id,))
            row = cursor.fetchone()
            if row is None:
                raise UnknownNameError(f"no run with id {run_id}")
            tag_id = self._ensure(cursor, "tags", {"experiment_id": row[0], "name": tag})
            cursor.execute(
                self.dialect.insert_ignore("run_tags", ("run_id", "tag_id")), (run_id, tag_id)
            )

        self.transaction(work)

    def run_tags(self, run_id: int) -> list[str]:
        """The tags of a run, sorted."""
        rows = self._select(
            "SELECT t.name FROM tags t JOIN run_tags rt ON rt.tag_id=t.id WHERE rt.run_id=? ORDER BY t.name",
            (run_id,),
        )
        return [name for (name,) in rows]

    def ensure_dataset(self, experiment: str, name: str, tags: Iterable[str]) -> int:
        """Id of dataset ``name``: the runs of ``experiment`` that carry every tag in ``tags``."""
        tags = sorted(set(tags))
        if not tags:
            raise ValueError(f"dataset {name!r} needs at least one tag")

        def work(cursor):
            experiment_id = self._ensure(
                cursor, "experiments", {"name": experiment}, {"created": time.time()}
            )
            dataset_id = self._ensure(
                cursor, "datasets", {"experiment_id": experiment_id, "name": name}
            )
            for tag in tags:
                tag_id = self._ensure(cursor, "tags", {"experiment_id": experiment_id, "name": tag})
                cursor.execute(
                    self.dialect.insert_ignore("dataset_tags", ("dataset_id", "tag_id")),
                    (dataset_id, tag_id),
                )
            return dataset_id

        return self.transaction(work)

    def datasets(self, experiment: str) -> list[dict]:
        """Datasets of an experiment as id/name/tags, by name."""
        rows = self._select(
            """SELECT d.id, d.name, t.name FROM datasets d
               JOIN experiments e ON e.id=d.experiment_id
               LEFT JOIN dataset_tags dt ON dt.dataset_id=d.id
               LEFT JOIN tags t ON t.id=dt.tag_id
               WHERE e.name=? ORDER BY d.name, t.name""",
            (experiment,),
        )
        found: dict[int, dict] = {}
        for dataset_id, name, tag in rows:
            entry = found.setdefault(
                int(dataset_id), {"id": int(dataset_id), "name": name, "tags": []}
            )
            if tag is not None:
                entry["tags"].append(tag)
        return list(found.values())

    def dataset_runs(self, experiment: str, dataset: str) -> list[tuple[int, str]]:
        """(run_id, run name) of every run carrying all tags of the dataset, by name."""

        def work(cursor):
            cursor.execute(
                self._q(
                    "SELECT d.id FROM datasets d JOIN experiments e ON e.id=d.experiment_id "
                    "WHERE e.name=? AND d.name=?"
                ),
                (experiment, dataset),
            )
            row = cursor.fetchone()
            if row is None:
                raise UnknownNameError(f"no dataset {dataset!r} in experiment {experiment!r}")
            cursor.execute(
                self._q(
                    """SELECT r.id, r.name FROM runs r
                   JOIN run_tags rt ON rt.run_id=r.id
                   JOIN dataset_tags dt ON dt.tag_id=rt.tag_id
                   WHERE dt.dataset_id=?
                   GROUP BY r.id, r.name
                   HAVING COUNT(*)=(SELECT COUNT(*) FROM dataset_tags WHERE dataset_id=?)
                   ORDER BY r.name"""
                ),
                (row[0], row[0]),
            )
            return [(int(run_id), name) for run_id, name in cursor.fetchall()]

        return self.transaction(work, write=False)

    # -- facility side: jobs and transfers ----------------------------------------------

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

    # -- results ----------------------------------------------------------------------

    def record_run_summary(
        self,
        run_id: int,
        trial_id: int,
        status: str,
        funnel: dict,
        timings: dict,
        finished: float | None = None,
    ) -> None:
        """Store (or replace) the summary of one processing of a run with a trial."""
        columns = ("run_id", "trial_id", "status", "funnel", "timings", "finished")
        values = (
            run_id,
            trial_id,
            status,
            canonical_json(funnel),
            canonical_json(timings),
            finished if finished is not None else time.time(),
        )
        self.transaction(
            lambda cursor: cursor.execute(
                self.dialect.upsert("run_summaries", columns, ("run_id", "trial_id")), values
            )
        )

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

    def insert_images(self, encoded_rows: list) -> None:
        """Insert rows already encoded by ``dialect.encode_row`` in one idempotent transaction."""
        self.transaction(
            lambda cursor: self.dialect.bulk_insert_ignore(
                cursor, "images", IMAGE_COLUMNS, encoded_rows
            )
        )

    def image_counts(self, run_id: int, trial_id: int) -> dict:
        """Live progress of a run: totals of the funnel and images per status."""
        rows = self._select(
            "SELECT status, COUNT(*), SUM(hit), SUM(is_indexed), SUM(CASE WHEN n_integrated>0 THEN 1 ELSE 0 END) "
            "FROM images WHERE run_id=? AND trial_id=? GROUP BY status",
            (run_id, trial_id),
        )
        counts = {"images": 0, "hits": 0, "indexed": 0, "integrated": 0, "by_status": {}}
        for status, n, hits, indexed, integrated in rows:
            counts["by_status"][status] = int(n)
            counts["images"] += int(n)
            counts["hits"] += int(hits)
            counts["indexed"] += int(indexed)
            counts["integrated"] += int(integrated)
        return counts

    def images(self, run_id: int, trial_id: int) -> list[dict]:
        """All image rows of a run and trial, in (chunk, event) order."""
        columns = IMAGE_COLUMNS[2:]
        rows = self._select(
            f"SELECT {','.join(columns)} FROM images WHERE run_id=? AND trial_id=? "
            "ORDER BY chunk, event",
            (run_id, trial_id),
        )
        return [dict(zip(columns, row)) for row in rows]

    def weather(self, run_id: int, trial_id: int) -> list[tuple[int, float, float, str]]:
        """(rank, start, end, stage) of every stage of every image, stages back to back."""
        rows = self._select(
            "SELECT mpi_rank, t_start, timings FROM images WHERE run_id=? AND trial_id=? "
            "ORDER BY mpi_rank, t_start",
            (run_id, trial_id),
        )
        return [
            seg
            for rank, start, timings in rows
            for seg in stage_segments(rank, start, json.loads(timings))
        ]

    def run_table(self, experiment: str, trial_id: int) -> list[dict]:
        """One row per run of ``experiment`` for the dashboard, by run name.

        Keys: run_id, run, state (latest job state, else summary status, else "new"),
        images, hits, indexed, integrated, turnaround_s (summary finished − run concluded).
        """
        rows = self._select(
            """SELECT r.id, r.name, r.concluded, s.status, s.finished,
                      (SELECT j.state FROM jobs j WHERE j.run_id=r.id AND j.trial_id=? ORDER BY j.id DESC LIMIT 1),
                      COUNT(i.event), SUM(i.hit), SUM(i.is_indexed),
                      SUM(CASE WHEN i.n_integrated>0 THEN 1 ELSE 0 END)
               FROM runs r JOIN experiments e ON e.id=r.experiment_id
               LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
               LEFT JOIN images i ON i.run_id=r.id AND i.trial_id=?
               WHERE e.name=?
               GROUP BY r.id, r.name, r.concluded, s.status, s.finished
               ORDER BY r.name""",
            (trial_id, trial_id, trial_id, experiment),
        )
        table = []
        for (
            run_id,
            name,
            concluded,
            status,
            finished,
            job_state,
            n,
            hits,
            indexed,
            integrated,
        ) in rows:
            turnaround = (
                finished - concluded if finished is not None and concluded is not None else None
            )
            table.append(
                {
                    "run_id": run_id,
                    "run": name,
                    "state": job_state or status or "new",
                    "images": int(n),
                    "hits": int(hits or 0),
                    "indexed": int(indexed or 0),
                    "integrated": int(integrated or 0),
                    "turnaround_s": turnaround,
                }
            )
        return table


def _merge_scope(dataset_id: int | None, run_id: int | None) -> tuple[str, int]:
    if (dataset_id is None) == (run_id is None):
        raise ValueError("merge statistics belong to exactly one of dataset_id or run_id")
    return ("dataset", dataset_id) if dataset_id is not None else ("run", run_id)
