"""The runs table reads a finished run's image counts from its summary (frozen when the
summary is recorded, backfilled by migration 5) and counts image rows only of the others."""

from __future__ import annotations

from kernels.resultsdb import ResultsDB
from kernels.resultsdb.dialect import dialect_for
from kernels.resultsdb.logger import ImageLogger, ImageRow
from kernels.resultsdb.migrations import MIGRATIONS, apply_migrations
from kernels.resultsdb.url import parse_db_url


def log(url: str, run: int, trial: int, events: range) -> None:
    logger = ImageLogger(ResultsDB(url), run, trial)
    logger.add_many(
        ImageRow(0, e, e % 2 == 0, 30, e % 4 == 0, 20, 10 * (e % 4 == 0), "hit", "", 0, "h", 1.0, {})
        for e in events
    )  # fmt: skip
    logger.close()


def counts(db: ResultsDB, trial: int) -> dict:
    return {r["run"]: tuple(r[k] for k in ("images", "hits", "indexed", "integrated"))
            for r in db.run_table("cxi1", trial)}  # fmt: skip


def test_summary_freezes_counts_and_running_runs_are_counted(db_url):
    db = ResultsDB(db_url)
    trial = db.ensure_trial("t", {})
    done, running = db.ensure_run("cxi1", "r0001"), db.ensure_run("cxi1", "r0002")
    log(db_url, done, trial, range(8))
    log(db_url, running, trial, range(4))
    db.record_run_summary(done, trial, "complete", {}, {})
    assert counts(db, trial) == {"r0001": (8, 4, 2, 2), "r0002": (4, 2, 1, 1)}
    log(db_url, running, trial, range(4, 6))  # live: the running run's new rows count at once
    assert counts(db, trial)["r0002"] == (6, 3, 2, 2)
    db.record_run_summary(done, trial, "complete", {}, {})  # re-recorded: counted afresh
    assert counts(db, trial)["r0001"] == (8, 4, 2, 2)


def test_migration_5_backfills_the_counts_of_earlier_summaries(db_url):
    dialect = dialect_for(parse_db_url(db_url))
    conn = dialect.connect()
    try:
        assert apply_migrations(conn, dialect, MIGRATIONS[:4]) == 4
        cursor = conn.cursor()
        for event in range(3):  # images and a summary as version-4 code wrote them
            cursor.execute(
                "INSERT INTO images (run_id, trial_id, chunk, event, hit, n_spots, is_indexed, "
                "n_refined, n_integrated, status, reason, mpi_rank, host, t_start, timings) "
                f"VALUES (7, 1, 0, {event}, 1, 30, {int(event == 0)}, 0, 0, 'hit', '', 0, 'h', 1.0, '{{}}')"
            )
        cursor.execute(
            "INSERT INTO run_summaries (run_id, trial_id, status, funnel, timings, finished) "
            "VALUES (7, 1, 'complete', '{}', '{}', 2.0)"
        )
        conn.commit()
        assert apply_migrations(conn, dialect) == len(MIGRATIONS)
        cursor.execute("SELECT n_images, n_hits, n_indexed, n_integrated FROM run_summaries")
        assert tuple(cursor.fetchone()) == (3, 3, 1, 0)
        cursor.close()
    finally:
        conn.close()
