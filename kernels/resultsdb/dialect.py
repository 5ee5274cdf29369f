"""The thin shim that lets one set of SQL run on SQLite and on MySQL/MariaDB.

All SQL in the package is written once, with ``?`` placeholders and a few ``{tokens}``
in DDL. A dialect translates placeholders, fills the DDL tokens, and owns the only
statements that really differ: idempotent insert, upsert, and the bulk insert.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pymysql
import pymysql.converters

from .url import DbUrl, read_password

# Errors after which a fresh connection and a retry of the whole transaction may succeed.
_MYSQL_TRANSIENT_CODES = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # connection was killed
    2003,  # can't connect
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync (after an interrupted read)
}


class Dialect:
    """Base: what differs between the two backends, nothing else."""

    name = ""
    ddl_tokens: dict[str, str] = {}
    # appended to a SELECT that must see rows other transactions committed since this one's
    # first read (MariaDB's repeatable read would otherwise answer from that first snapshot)
    latest_read = ""

    def __init__(self, url: DbUrl):
        self.url = url

    def connect(self, read_only: bool = False) -> Any:
        """A new DB-API connection in autocommit-off, explicit-transaction mode.

        ``read_only``: the connection cannot write, and opening it writes nothing either.
        """
        raise NotImplementedError

    def sql(self, query: str) -> str:
        """Translate ``?`` placeholders to this driver's paramstyle."""
        return query

    def ddl(self, statement: str) -> str:
        """Fill the ``{tokens}`` of a DDL statement."""
        return statement.format(**self.ddl_tokens)

    def begin(self, conn: Any, write: bool = True) -> None:
        """Open a transaction explicitly (``write=False``: read-only, takes no write lock)."""
        raise NotImplementedError

    def insert_ignore(self, table: str, columns: Sequence[str]) -> str:
        """INSERT that silently skips rows whose unique key already exists."""
        raise NotImplementedError

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """INSERT that overwrites the non-key columns when the key already exists."""
        raise NotImplementedError

    def row_encoder(self, kinds: str) -> Callable[[Sequence[Any]], Any]:
        """A function preparing one row for :meth:`bulk_insert_ignore` (run once per row, when buffered).

        ``kinds`` has one letter per column: ``i`` integer, ``f`` float, ``s`` string,
        ``j`` text made only of identifiers, digits and JSON punctuation (no quote or
        backslash, so it needs no escaping).
        """
        return tuple

    def bulk_insert_ignore(
        self, cursor: Any, table: str, columns: Sequence[str], rows: list
    ) -> None:
        """Insert many encoded rows inside the caller's transaction, skipping existing keys."""
        raise NotImplementedError

    def is_transient(self, exc: BaseException) -> bool:
        """True if reconnecting and retrying the transaction may succeed."""
        raise NotImplementedError

    def already_applied(self, exc: BaseException) -> bool:
        """True if a migration statement failed only because its change is already there."""
        return False


class SqliteDialect(Dialect):
    """Embedded default: one file, WAL so readers never block the logger."""

    name = "sqlite"
    # SQLite has no ADD COLUMN IF NOT EXISTS: a column added twice is recognised by already_applied
    ddl_tokens = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "text": "TEXT",
        "engine": "",
        "if_not_exists": "",
    }

    def connect(self, read_only: bool = False) -> sqlite3.Connection:
        if read_only:
            # mode=ro: a missing file is an error instead of a new empty DB, and no PRAGMA
            # writes the journal mode (the writers set it).
            if not os.path.exists(self.url.path):
                raise sqlite3.OperationalError(f"no results DB file at {self.url.path}")
            uri = Path(self.url.path).resolve().as_uri() + "?mode=ro"
            return sqlite3.connect(
                uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False
            )
        # check_same_thread off: a logger connects in the caller thread and writes from its
        # writer thread; ResultsDB never uses one connection from two threads at once.
        conn = sqlite3.connect(
            self.url.path, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def begin(self, conn: sqlite3.Connection, write: bool = True) -> None:
        # A writer takes the lock up front (a deferred upgrade could fail with SQLITE_BUSY
        # that no timeout resolves); readers under WAL never block anyone.
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def insert_ignore(self, table, columns):
        marks = ",".join("?" * len(columns))
        return f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"

    def upsert(self, table, columns, key):
        marks = ",".join("?" * len(columns))
        updates = ",".join(f"{c}=excluded.{c}" for c in columns if c not in key)
        return (
            f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT ({','.join(key)}) DO UPDATE SET {updates}"
        )

    def row_encoder(self, kinds):
        converters = [
            {"i": int, "f": float, "s": str, "j": str}[k] for k in kinds
        ]  # numpy scalars -> Python
        return lambda row: tuple(convert(value) for convert, value in zip(converters, row))

    def bulk_insert_ignore(self, cursor, table, columns, rows):
        cursor.executemany(self.insert_ignore(table, columns), rows)

    def is_transient(self, exc):
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def already_applied(self, exc):
        return isinstance(exc, sqlite3.OperationalError) and "duplicate column name" in str(exc)


class MysqlDialect(Dialect):
    """MySQL/MariaDB through PyMySQL."""

    latest_read = " FOR UPDATE"

    name = "mysql"
    ddl_tokens = {
        "id": "BIGINT AUTO_INCREMENT PRIMARY KEY",
        "text": "MEDIUMTEXT",
        "engine": " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "if_not_exists": "IF NOT EXISTS ",
    }
    # Statements of ~256 KiB: the server ingests them ~20 % faster than 8 MiB ones (measured with
    # bench/db_bench.py), and far below max_allowed_packet (16 MiB by default).
    max_statement_bytes = 256 * 1024

    def connect(self, read_only: bool = False) -> pymysql.connections.Connection:
        conn = pymysql.connect(
            host=self.url.host,
            port=self.url.port,
            user=self.url.user,
            password=read_password() or "",
            database=self.url.database,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=10,
        )
        with conn.cursor() as cursor:
            # A known mode: strict (no silent truncation) and backslash escapes on, which
            # encode_row relies on.
            cursor.execute("SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            if read_only:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def sql(self, query: str) -> str:
        return query.replace("%", "%%").replace("?", "%s")

    def begin(self, conn, write: bool = True) -> None:
        conn.begin()

    def insert_ignore(self, table, columns):
        # ON DUPLICATE KEY with a no-op update skips existing keys but, unlike INSERT IGNORE,
        # still raises on bad data instead of truncating it.
        marks = ",".join(["%s"] * len(columns))
        return (
            f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks}) "
            f"ON DUPLICATE KEY UPDATE {columns[0]}={columns[0]}"
        )

    def upsert(self, table, columns, key):
        marks = ",".join(["%s"] * len(columns))
        updates = ",".join(f"{c}=VALUES({c})" for c in columns if c not in key)
        return f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {updates}"

    def row_encoder(self, kinds):
        # One %-format per row and escaping only of the string columns: ~3x faster than
        # a literal() call per value, and the logger encodes every image row.
        literal = {"i": "%d", "f": "%.6f", "s": "'%s'", "j": "'%s'"}
        template = "(" + ",".join(literal[k] for k in kinds) + ")"
        strings = [i for i, k in enumerate(kinds) if k == "s"]
        escape = pymysql.converters.escape_string

        def encode(row):
            values = list(row)
            for i in strings:
                values[i] = escape(values[i])
            return template % tuple(values)

        return encode

    def bulk_insert_ignore(self, cursor, table, columns, rows):
        head = f"INSERT INTO {table} ({','.join(columns)}) VALUES "
        tail = f" ON DUPLICATE KEY UPDATE {columns[0]}={columns[0]}"
        start, size = 0, 0
        for i, encoded in enumerate(rows):
            size += len(encoded) + 1
            if size > self.max_statement_bytes:
                cursor.execute(head + ",".join(rows[start:i]) + tail)
                start, size = i, len(encoded) + 1
        if start < len(rows):
            cursor.execute(head + ",".join(rows[start:]) + tail)

    def is_transient(self, exc):
        if isinstance(exc, pymysql.err.InterfaceError):
            return True  # the connection object is already closed
        if isinstance(exc, pymysql.err.OperationalError):
            return bool(exc.args) and exc.args[0] in _MYSQL_TRANSIENT_CODES
        return isinstance(exc, (ConnectionError, TimeoutError))


def dialect_for(url: DbUrl) -> Dialect:
    """The dialect object for a parsed URL."""
    return {"sqlite": SqliteDialect, "mysql": MysqlDialect}[url.scheme](url)
