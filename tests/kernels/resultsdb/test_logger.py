"""Batched image logging survives killed connections and a vanished DB: nothing lost, nothing twice."""

from __future__ import annotations

import logging
import threading
import time

import pymysql
import pytest

from kernels.driver import logger_connections
from kernels.resultsdb import ResultsDB
from kernels.resultsdb.logger import ImageLogger, ImageRow, LoggerFailedError


def rows(n, start=0):
    return [
        ImageRow(
            i // 1000,
            i % 1000,
            i % 3 == 0,
            i % 50,
            i % 6 == 0,
            i % 40,
            i % 30,
            "hit",
            "it's ok",
            i % 7,
            "nid001",
            1.7e9 + i,
            {"calibrate": 0.001, "spotfind": 0.002},
        )
        for i in range(start, start + n)
    ]


def count(db, run, trial):
    rows_ = db._select(
        "SELECT COUNT(*), COUNT(DISTINCT chunk*1000+event) FROM images WHERE run_id=? AND trial_id=?",
        (run, trial),
    )
    return tuple(int(x) for x in rows_[0])


def setup(url):
    db = ResultsDB(url)
    return db, db.ensure_run("cxi1", "r0001"), db.ensure_trial("default", {})


def test_replayed_rows_insert_nothing_twice(db_url):
    db, run, trial = setup(db_url)
    logger = ImageLogger(ResultsDB(db_url), run, trial, batch_rows=300, max_rows=1000)
    logger.add_many(rows(1000))
    logger.flush()
    logger.add_many(rows(1000, start=500))  # half of them again, as a replayed flush would
    logger.close()
    assert count(db, run, trial) == (1500, 1500)
    assert db.images(run, trial)[0]["reason"] == "it's ok"


class InsertWatcher(threading.Thread):
    """Watches the server's process list: KILLs ``victim`` once it is seen running an INSERT
    into images, and records how many connections of the database were inserting at once."""

    def __init__(self, admin, url, victim):
        super().__init__()
        self.admin, self.database, self.victim = admin, url.rsplit("/", 1)[1], victim
        self.killed = threading.Event()
        self.stop = threading.Event()
        self.most_concurrent = 0

    def run(self):
        with self.admin() as admin, admin.cursor() as cur:
            deadline = time.monotonic() + 60
            while not self.stop.is_set() and time.monotonic() < deadline:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST "
                    "WHERE DB=%s AND INFO LIKE 'INSERT INTO images%%'",
                    (self.database,),
                )
                inserting = {row[0] for row in cur.fetchall()}
                if (
                    self.killed.is_set()
                ):  # the killed thread may still be listed while it rolls back
                    inserting.discard(self.victim)
                self.most_concurrent = max(self.most_concurrent, len(inserting))
                if self.victim in inserting:
                    cur.execute(f"KILL {int(self.victim)}")
                    self.killed.set()


@pytest.mark.parametrize("connections", [1, 2])
def test_killed_connection_mid_flush_loses_and_duplicates_nothing(
    mariadb_url, mariadb_admin, caplog, connections
):
    db, run, trial = setup(mariadb_url)
    logger_db = ResultsDB(mariadb_url)
    victim = logger_db.connection_id()  # the first writer's connection
    watcher = InsertWatcher(mariadb_admin, mariadb_url, victim)
    watcher.start()
    logger = ImageLogger(
        logger_db, run, trial, batch_rows=30_000, max_rows=240_000, connections=connections
    )
    n = 240_000
    with caplog.at_level(logging.WARNING, logger="kernels.resultsdb"):
        logger.add_many(rows(n))
        logger.close()
    watcher.stop.set()
    watcher.join()
    assert watcher.killed.is_set(), "the insert finished before it could be killed"
    assert watcher.most_concurrent == connections, "every writer must insert, concurrently"
    assert any("reconnecting and retrying" in r.getMessage() for r in caplog.records)
    assert count(db, run, trial) == (n, n)
    assert logger.rows_written >= n  # a killed batch may have committed before its replay


def test_k_writers_write_the_same_rows_as_one(db_url):
    db, _, trial = setup(db_url)
    written = {}
    for connections in (1, 3):
        run = db.ensure_run("cxi1", f"r-{connections}")
        logger = ImageLogger(
            ResultsDB(db_url), run, trial, batch_rows=700, max_rows=2100, connections=connections
        )
        logger.add_many(rows(9000))
        logger.add_many(rows(3000, start=4000))  # replayed rows, spread over the writers' batches
        logger.close()
        written[connections] = db.images(run, trial)
        assert logger.rows_written == 12_000
        assert 0 < logger.write_seconds
    assert len(written[1]) == 9000
    assert written[3] == written[1]
    sqlite = db_url.startswith("sqlite")
    assert logger.connections == (1 if sqlite else 3)  # SQLite has one writer per file


def test_db_unreachable_then_back_bounded_buffer(mariadb_url, db_proxy, caplog):
    db, run, trial = setup(mariadb_url)
    via_proxy = mariadb_url.replace(":3306", f":{db_proxy.port}")
    logger = ImageLogger(ResultsDB(via_proxy), run, trial, batch_rows=1000, max_rows=5000)
    logger.add_many(rows(2000))
    logger.flush()
    db_proxy.cut()  # the DB disappears: open connection reset, new ones refused
    producer = threading.Thread(target=logger.add_many, args=(rows(20_000, start=2000),))
    with caplog.at_level(logging.WARNING, logger="kernels.resultsdb"):
        producer.start()
        time.sleep(1.5)
        assert producer.is_alive(), "add() must block while the bounded buffer is full"
        assert logger.unwritten() <= 5000
        db_proxy.restore()
        producer.join(timeout=60)
        logger.close()
    assert not producer.is_alive()
    assert any("unavailable" in r.getMessage() for r in caplog.records)
    assert count(db, run, trial) == (22_000, 22_000)


def test_lost_commit_acknowledgement_is_replayed_harmlessly(mariadb_url, mocker):
    """The server commits but the client never hears back (cannot be timed for real)."""
    db, run, trial = setup(mariadb_url)
    real_commit = pymysql.connections.Connection.commit
    calls = {"n": 0}

    def commit_then_lose_ack(self):
        real_commit(self)
        calls["n"] += 1
        if calls["n"] == 1:
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")

    logger_db = ResultsDB(mariadb_url)
    logger_db.connection_id()  # connected and migrated before the fault is armed
    logger = ImageLogger(logger_db, run, trial, batch_rows=5000, max_rows=5000)
    mocker.patch.object(pymysql.connections.Connection, "commit", commit_then_lose_ack)
    logger.add_many(rows(5000))
    logger.close()
    assert calls["n"] == 2  # committed, "lost", replayed
    assert count(db, run, trial) == (5000, 5000)


def test_gives_up_after_retry_window_keeping_rows(mariadb_url, db_proxy):
    db, run, trial = setup(mariadb_url)
    via_proxy = mariadb_url.replace(":3306", f":{db_proxy.port}")
    logger_db = ResultsDB(via_proxy, retry_for=1.0)
    logger_db.connection_id()  # connected and migrated before the outage
    logger = ImageLogger(logger_db, run, trial, batch_rows=100, max_rows=1000)
    db_proxy.cut()
    logger.add_many(rows(50))
    with pytest.raises(LoggerFailedError, match="50 rows not written"):
        logger.flush()
    assert logger.unwritten() == 50


def test_rows_become_visible_without_a_full_batch(db_url):
    """Live progress: a partial batch is written within flush_seconds, no flush() needed."""
    db, run, trial = setup(db_url)
    logger = ImageLogger(
        ResultsDB(db_url), run, trial, batch_rows=10_000, max_rows=10_000, flush_seconds=0.3
    )
    logger.add_many(rows(25))
    deadline = time.monotonic() + 10
    while count(db, run, trial)[0] < 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(db, run, trial) == (25, 25)
    logger.close()


def test_stage_names_must_be_identifiers(sqlite_url):
    db, run, trial = setup(sqlite_url)
    logger = ImageLogger(ResultsDB(sqlite_url), run, trial)
    bad = rows(1)[0]._replace(timings={"x'); DROP TABLE images; --": 1.0})
    with pytest.raises(ValueError, match="stage name"):
        logger.add(bad)
    logger.close()


def test_driver_opens_at_most_one_connection_per_ten_ranks():
    ranks = (1, 9, 10, 19, 20, 35, 80, 8192)
    assert [logger_connections(n) for n in ranks] == [1, 1, 1, 1, 2, 3, 8, 8]
