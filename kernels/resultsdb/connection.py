"""The results DB connection: one connection (SQLite or MySQL/MariaDB), schema applied, and
transactions that reconnect and replay after a dropped connection."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from .dialect import Dialect, dialect_for
from .migrations import apply_migrations
from .url import parse_db_url

log = logging.getLogger("kernels.resultsdb")
RETRY_ENV = "SFXFLOW_DB_RETRY_SECONDS"
T = TypeVar("T")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Connection:
    """The one DB connection and its transactions, shared by the query mixins of
    :class:`~kernels.resultsdb.ResultsDB` (whose docstring describes the parameters)."""

    first_retry_delay = 0.2
    max_retry_delay = 5.0

    def __init__(self, url: str, retry_for: float | None = None, read_only: bool = False):
        self.url = parse_db_url(url)
        self.dialect: Dialect = dialect_for(self.url)
        self.retry_for = (
            retry_for if retry_for is not None else float(os.environ.get(RETRY_ENV, "600"))
        )
        self._conn: Any = None  # a DB-API connection of the dialect's driver
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

    def __enter__(self) -> Self:
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
