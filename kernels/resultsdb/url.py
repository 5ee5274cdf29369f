"""Results-DB URLs: ``sqlite:///path/results.db`` or ``mysql://user@host:port/dbname``.

The password never travels in the URL (URLs end up in logs, job scripts and Airflow
configs). It is read from ``SFXFLOW_DB_PASSWORD_FILE`` (a file, should be mode 0600) or
``SFXFLOW_DB_PASSWORD``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

PASSWORD_FILE_ENV = "SFXFLOW_DB_PASSWORD_FILE"
PASSWORD_ENV = "SFXFLOW_DB_PASSWORD"


class DbUrlError(ValueError):
    """A results-DB URL that cannot be used."""


@dataclass(frozen=True)
class DbUrl:
    """A parsed results-DB URL (never holds a password)."""

    scheme: str  # "sqlite" or "mysql"
    path: str = ""  # sqlite file
    host: str = ""
    port: int = 3306
    user: str = ""
    database: str = ""

    def redacted(self) -> str:
        """The URL as safe to log."""
        if self.scheme == "sqlite":
            return f"sqlite:///{self.path}"
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_db_url(url: str) -> DbUrl:
    """Parse a results-DB URL.

    Parameters
    ----------
    url : str
        ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy convention) or
        ``mysql://user@host[:port]/dbname`` (``mysql+pymysql://`` accepted).

    Raises
    ------
    DbUrlError
        Unknown scheme, missing database name, or a password inside the URL (the
        message never repeats the password).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        rest = unquote(url.split("://", 1)[1])
        path = rest[1:] if rest.startswith("/") else ""
        if not path:
            raise DbUrlError(
                "sqlite results-DB URL has no file path (want sqlite:///path/results.db)"
            )
        return DbUrl("sqlite", path=path)
    if scheme == "mysql":
        if parts.password is not None:
            raise DbUrlError(
                f"results-DB URL for {parts.hostname} contains a password; put it in "
                f"{PASSWORD_FILE_ENV} (a 0600 file) or {PASSWORD_ENV} instead"
            )
        database = parts.path.lstrip("/")
        if not database or "/" in database:
            raise DbUrlError(
                f"mysql results-DB URL needs exactly one database name, got {database!r}"
            )
        return DbUrl(
            "mysql",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            database=database,
        )
    raise DbUrlError(
        f"unsupported results-DB URL scheme {parts.scheme!r} (use sqlite:/// or mysql://)"
    )


def read_password() -> str | None:
    """The DB password from the password file or environment, or None."""
    path = os.environ.get(PASSWORD_FILE_ENV)
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get(PASSWORD_ENV)
