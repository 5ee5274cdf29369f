"""``ResultsDB``: the small API every room uses to write and read the results DB."""

from __future__ import annotations

from .audit import AuditQueries
from .catalog import CatalogQueries
from .images import ImageQueries
from .records import RecordQueries
from .splits import SplitQueries
from .states import StateQueries
from .views import ViewQueries


class ResultsDB(
    CatalogQueries,
    RecordQueries,
    SplitQueries,
    StateQueries,
    ImageQueries,
    ViewQueries,
    AuditQueries,
):
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

    The queries live in one mixin per concern (catalogue, records, split statistics, pipeline states, images, views, audit log) over the
    shared :class:`~kernels.resultsdb.connection.Connection`.
    """
