"""Results-DB connection policy of a job: how many writer connections, opened when and how."""

from __future__ import annotations

from kernels.driver.options import ProcessOptions
from kernels.resultsdb import ResultsDB
from kernels.resultsdb.logger import ImageLogger, LoggerFailedError
from kernels.stages.pipeline import ProcessingParams

RANKS_PER_DB_CONNECTION = 10  # the goal allows at most one results-DB connection per 10 ranks
# The logger's default buffer (500 000 rows) keeps 8 writers of 50 000-row batches busy, a DB
# server rarely has more cores to give one job (one server thread per connection), and
# hundreds of connections would exceed its max_connections (151 by default).
MAX_LOGGER_CONNECTIONS = 8


def logger_connections(ranks: int) -> int:
    """Writer connections for a job of ``ranks`` ranks: one per full 10, at least 1, at most 8.

    Rounded down, not up, so a job of 10 or more ranks never holds more than one
    connection per 10 ranks; a smaller job still needs its one.
    """
    return min(MAX_LOGGER_CONNECTIONS, max(1, ranks // RANKS_PER_DB_CONNECTION))


def open_logger(
    options: ProcessOptions, run_name: str, params: ProcessingParams, ranks: int
) -> ImageLogger | None:
    """The job's logger, with ``logger_connections(ranks)`` writers (None without a DB URL).

    The main thread uses the first writer's connection only before logging starts and
    after the final flush (run summary), never while the writer threads are busy.

    Raises
    ------
    LoggerFailedError
        The DB stayed unreachable for its whole retry window: the job runs on without it,
        like after an outage mid-run.
    """
    if not options.db:
        return None
    db = ResultsDB(options.db)
    try:
        run_id = db.ensure_run(options.experiment_name, run_name)
        trial_id = db.ensure_trial(options.trial, params.to_dict())
    except Exception as exc:
        if not db.dialect.is_transient(exc):
            raise
        db.close()
        raise LoggerFailedError(
            f"results DB {db.url.redacted()} unreachable at the start of the job "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return ImageLogger(db, run_id, trial_id, connections=logger_connections(ranks))
