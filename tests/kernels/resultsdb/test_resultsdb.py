"""The results DB API on both backends (SQLite file and the real MariaDB)."""

from __future__ import annotations

import time

import pytest

from kernels.resultsdb import (
    Migration,
    ResultsDB,
    SchemaError,
    TrialParamsChangedError,
    apply_migrations,
    parse_db_url,
)
from kernels.resultsdb.dialect import dialect_for
from kernels.resultsdb.migrations import MIGRATIONS, schema_version
from kernels.resultsdb.url import DbUrlError

EVIL = [
    "Robert'); DROP TABLE runs;--",
    'x" OR 1=1; DELETE FROM images; --',
    "back\\slash' ; SELECT SLEEP(5); #",
    "%s %(x)s ? ?? 'quoted'",
    "ünïcødé ☃ trial",
]


def test_url_parsing_and_password_refused():
    assert parse_db_url("sqlite:///rel/results.db").path == "rel/results.db"
    assert parse_db_url("sqlite:////abs/results.db").path == "/abs/results.db"
    url = parse_db_url("mysql://sfx@db.example:3307/results")
    assert (url.host, url.port, url.user, url.database) == ("db.example", 3307, "sfx", "results")
    with pytest.raises(DbUrlError) as err:
        parse_db_url("mysql://sfx:hunter2@db.example/results")
    assert "hunter2" not in str(err.value) and "SFXFLOW_DB_PASSWORD" in str(err.value)
    with pytest.raises(DbUrlError, match="scheme"):
        parse_db_url("postgres://x@y/z")


def test_password_from_file(mariadb_url, tmp_path, monkeypatch):
    """A wrong password from the password file is used (and refused by the server), not logged."""
    secret = tmp_path / "pw"
    secret.write_text("not-the-password\n")
    secret.chmod(0o600)
    monkeypatch.setenv("SFXFLOW_DB_PASSWORD_FILE", str(secret))
    with pytest.raises(Exception) as err:
        ResultsDB(mariadb_url.replace("root@", "nobody_sfx@"), retry_for=0).ensure_experiment("e")
    assert "not-the-password" not in str(err.value)


def test_injection_names_stored_verbatim(db_url):
    db = ResultsDB(db_url)
    for name in EVIL:
        run_id = db.ensure_run(name, name)
        trial_id = db.ensure_trial(name, {"note": name})
        db.tag_run(run_id, name)
        assert db.run_tags(run_id) == [name]
        assert db.get_trial(name)["params"] == {"note": name}
        assert db.get_trial(name)["id"] == trial_id
        db.ensure_dataset(name, name, [name])
        assert db.dataset_runs(name, name) == [(run_id, name)]
        assert [row["run"] for row in db.run_table(name, trial_id)] == [name]
    # every table still there, one run per evil experiment
    assert sum(len(db.run_table(name, 1)) for name in EVIL) == len(EVIL)


def test_ensure_is_idempotent_and_trials_immutable(db_url):
    db = ResultsDB(db_url)
    assert db.ensure_experiment("cxi1") == db.ensure_experiment("cxi1")
    run = db.ensure_run("cxi1", "r0001", concluded=100.0)
    assert (
        db.ensure_run("cxi1", "r0001", concluded=999.0) == run
    )  # concluded kept from first record
    assert db.ensure_run("cxi2", "r0001") != run  # run names are per experiment
    t1 = db.ensure_trial("default", {"spotfinder": {"min_pixels": 2}, "b": [1, 2]})
    assert (
        db.ensure_trial("default", {"b": [1, 2], "spotfinder": {"min_pixels": 2}}) == t1
    )  # key order irrelevant
    with pytest.raises(TrialParamsChangedError, match="'default' version 1 .* use version 2"):
        db.ensure_trial("default", {"spotfinder": {"min_pixels": 3}})
    t2 = db.ensure_trial("default", {"spotfinder": {"min_pixels": 3}}, version=2)
    assert t2 != t1 and db.get_trial("default")["version"] == 2
    assert db.get_trial("default", 1)["params"]["spotfinder"] == {"min_pixels": 2}


def test_datasets_are_tag_combinations(db_url):
    db = ResultsDB(db_url)
    runs = {name: db.ensure_run("cxi1", name) for name in ("r1", "r2", "r3")}
    db.tag_run(runs["r1"], "lysozyme")
    db.tag_run(runs["r1"], "dark")
    db.tag_run(runs["r2"], "lysozyme")
    db.tag_run(runs["r3"], "dark")
    db.ensure_dataset("cxi1", "lyso-dark", ["lysozyme", "dark"])
    db.ensure_dataset("cxi1", "lyso", ["lysozyme"])
    assert db.dataset_runs("cxi1", "lyso-dark") == [(runs["r1"], "r1")]
    assert db.dataset_runs("cxi1", "lyso") == [(runs["r1"], "r1"), (runs["r2"], "r2")]
    db.tag_run(runs["r2"], "dark")  # a new run joins the dataset as soon as it is tagged
    assert [name for _, name in db.dataset_runs("cxi1", "lyso-dark")] == ["r1", "r2"]


def test_jobs_transfers_summaries_merge_stats_and_run_table(db_url):
    db = ResultsDB(db_url)
    run = db.ensure_run("cxi1", "r0001", concluded=1000.0)
    idle = db.ensure_run("cxi1", "r0002")
    trial = db.ensure_trial("default", {})
    db.record_job(run, trial, "perlmutter", "4242", "PENDING", submitted=1001.0)
    db.record_job(run, trial, "perlmutter", "4242", "COMPLETED", started=1002.0, ended=1050.0)
    assert db.jobs(run, trial) == [
        {
            "machine": "perlmutter",
            "job_id": "4242",
            "state": "COMPLETED",
            "submitted": 1001.0,
            "started": 1002.0,
            "ended": 1050.0,
        }
    ]
    db.record_transfer(run, 4_000_000, 2.0, 2_000_000.0)
    db.record_transfer(run, 4_000_000, 0.5, 0.0)  # a retry that found every file already there
    assert db.transfer(run) | {"recorded": 0} == {
        "n_bytes": 4_000_000,
        "seconds": 0.5,
        "rate": 0.0,
        "recorded": 0,
    }
    assert db.transfer(idle) is None
    db.record_run_summary(
        run, trial, "complete", {"images": 3}, {"wall_seconds": 5.0}, finished=1060.0
    )
    db.record_run_summary(
        run, trial, "complete", {"images": 4}, {"wall_seconds": 5.0}, finished=1062.0
    )
    assert db.run_summary(run, trial)["funnel"] == {"images": 4}
    db.record_merge_stats(trial, {"cc_half": 0.9}, [{"d_min": 2.0, "cc_half": 0.5}], run_id=run)
    assert db.merge_stats(trial, run_id=run)["shells"][0]["d_min"] == 2.0
    assert db.merge_stats(trial, dataset_id=run) is None  # scopes do not mix
    with pytest.raises(ValueError):
        db.record_merge_stats(trial, {}, [], run_id=run, dataset_id=1)
    table = db.run_table("cxi1", trial)
    assert table[0] | {"created": 0.0} == {
        "created": 0.0,
        "concluded": 1000.0,
        "run_id": run,
        "run": "r0001",
        "state": "COMPLETED",
        "images": 0,
        "hits": 0,
        "indexed": 0,
        "integrated": 0,
        "turnaround_s": 62.0,
    }
    assert table[1]["run_id"] == idle and table[1]["state"] == "new"


def test_migrations_versioned_and_idempotent(db_url):
    dialect = dialect_for(parse_db_url(db_url))
    conn = dialect.connect()
    try:
        assert apply_migrations(conn, dialect) == len(MIGRATIONS)
        assert apply_migrations(conn, dialect) == len(MIGRATIONS)  # second apply: no-op
        extra = MIGRATIONS + (
            Migration(
                len(MIGRATIONS) + 1,
                "notes",
                ("CREATE TABLE IF NOT EXISTS notes (id {id}, body {text}){engine}",),
            ),
        )
        assert apply_migrations(conn, dialect, extra) == len(extra)
        cursor = conn.cursor()
        assert schema_version(cursor, dialect) == len(extra)
        cursor.execute("SELECT COUNT(*) FROM notes")
        cursor.close()
        with pytest.raises(SchemaError, match="newer than this code knows"):
            apply_migrations(conn, dialect)  # the DB is ahead of this code
        with pytest.raises(SchemaError, match="strictly increasing"):
            apply_migrations(conn, dialect, extra[::-1])
    finally:
        conn.close()


def test_a_version_1_db_keeps_each_runs_newest_transfer(db_url):
    dialect = dialect_for(parse_db_url(db_url))
    conn = dialect.connect()
    try:
        assert apply_migrations(conn, dialect, MIGRATIONS[:1]) == 1
        cursor = conn.cursor()
        insert = dialect.sql(
            "INSERT INTO transfers (run_id, n_bytes, seconds, rate, recorded) VALUES (?,?,?,?,?)"
        )
        for run_id, seconds in (
            (7, 3.0),
            (7, 2.0),
            (8, 1.0),
            (7, 1.5),
        ):  # run 7 recorded three times
            cursor.execute(insert, (run_id, 100, seconds, 100 / seconds, 1.0))
        conn.commit()
        assert apply_migrations(conn, dialect) == len(MIGRATIONS)
        cursor.execute("SELECT run_id, seconds FROM transfers ORDER BY run_id")
        assert [tuple(row) for row in cursor.fetchall()] == [(7, 1.5), (8, 1.0)]
        cursor.close()
    finally:
        conn.close()
    db = ResultsDB(db_url)
    db.record_transfer(7, 100, 1.0, 100.0)  # now an upsert on the run
    assert db.transfer(7)["seconds"] == 1.0


def test_weather_rebuilt_from_image_rows(db_url):
    from kernels.resultsdb.logger import ImageLogger, ImageRow

    db = ResultsDB(db_url)
    run, trial = db.ensure_run("cxi1", "r1"), db.ensure_trial("default", {})
    logger = ImageLogger(ResultsDB(db_url), run, trial, batch_rows=10, max_rows=10)
    t0 = time.time()
    logger.add(
        ImageRow(
            0,
            0,
            True,
            40,
            True,
            30,
            25,
            "integrated",
            "",
            1,
            "nid1",
            t0,
            {"calibrate": 0.5, "spotfind": 0.25, "index": 1.0},
        )
    )
    logger.add(
        ImageRow(
            0,
            1,
            False,
            2,
            False,
            0,
            0,
            "miss",
            "2 spots < 10",
            2,
            "nid1",
            t0 + 0.1,
            {"calibrate": 0.5, "spotfind": 0.25},
        )
    )
    logger.close()
    weather = db.weather(run, trial)
    assert [(rank, stage) for rank, _, _, stage in weather] == [
        (1, "calibrate"),
        (1, "spotfind"),
        (1, "index"),
        (2, "calibrate"),
        (2, "spotfind"),
    ]
    assert weather[2][1] == pytest.approx(t0 + 0.75) and weather[2][2] == pytest.approx(t0 + 1.75)
    counts = db.image_counts(run, trial)
    assert counts == {
        "images": 2,
        "hits": 1,
        "indexed": 1,
        "integrated": 1,
        "by_status": {"integrated": 1, "miss": 1},
    }
    assert db.images(run, trial)[1]["reason"] == "2 spots < 10"


def test_sqlite_readers_do_not_wait_for_a_writer(sqlite_url):
    """The dashboard reads while the logger holds a write transaction (WAL, deferred reads)."""
    import sqlite3

    db = ResultsDB(sqlite_url)
    run, trial = db.ensure_run("cxi1", "r1"), db.ensure_trial("default", {})
    writer = sqlite3.connect(parse_db_url(sqlite_url).path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO experiments (name, created) VALUES ('busy', 0)")
    started = time.monotonic()
    assert db.image_counts(run, trial)["images"] == 0
    assert db.run_table("cxi1", trial)[0]["run"] == "r1"
    assert time.monotonic() - started < 2.0
    writer.rollback()
    writer.close()


def test_catalogue_listings_for_the_dashboard(db_url):
    db = ResultsDB(db_url)
    run = db.ensure_run("cxi1", "r0001")
    db.ensure_experiment("cxi2")
    db.ensure_trial("default", {})
    db.ensure_trial("default", {"x": 1}, version=2)
    db.ensure_dataset("cxi1", "lyso", ["lysozyme", "dark"])
    assert set(db.experiments()) == {"cxi1", "cxi2"}
    assert [(t["name"], t["version"]) for t in db.trials()] == [("default", 2), ("default", 1)]
    assert db.datasets("cxi1") == [
        {"id": db.datasets("cxi1")[0]["id"], "name": "lyso", "tags": ["dark", "lysozyme"]}
    ]
    assert db.datasets("cxi2") == []
    assert db.run_name(run) == ("cxi1", "r0001")
    assert db.run_name(run + 1000) is None


def test_split_statistics_per_dataset_and_trial(db_url):
    db = ResultsDB(db_url)
    dataset = db.ensure_dataset("cxi1", "pp", ["pp"])
    other = db.ensure_dataset("cxi1", "dark", ["dark"])
    trial = db.ensure_trial("default", {})
    shells = [{"d_min": 3.1, "n": 40, "riso": 0.2, "cc_iso": 0.8}]
    stats = {
        "reference": "0",
        "images_in_no_set": 0,
        "sets": {"0": {"images": 12, "cc_half": 0.9, "completeness": None}, "1": {"images": 9}},
        "differences": {"1": {"riso": 0.25, "cc_iso": 0.75, "shells": shells}},
    }
    db.record_split_stats(trial, dataset, {"laser_on": stats | {"images_in_no_set": 3}})
    db.record_split_stats(trial, other, {"laser_on": stats})
    db.record_split_stats(
        trial, dataset, {"laser_on": stats, EVIL[0]: stats | {"reference": EVIL[1]}}
    )
    stored = db.split_stats(trial, dataset)  # the newer merge replaced the older
    assert sorted(stored) == sorted(["laser_on", EVIL[0]])
    assert stored["laser_on"] | {"updated": 0} == stats | {"updated": 0}
    assert stored[EVIL[0]]["reference"] == EVIL[1]  # names stored verbatim
    db.record_split_stats(trial, dataset, {})  # the dataset names no split any more
    assert db.split_stats(trial, dataset) == {}
    assert list(db.split_stats(trial, other)) == ["laser_on"]  # datasets do not mix
    with pytest.raises(ValueError, match=r"split 'delay_ns' statistics lack \['differences'\]"):
        db.record_split_stats(trial, dataset, {"delay_ns": {k: stats[k] for k in list(stats)[:3]}})
