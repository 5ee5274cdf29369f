"""Versioned schema of the results DB.

``MIGRATIONS`` is the ordered list of steps; a DB records the steps it has in
``schema_version``. Applying is idempotent and safe when several processes (logger
ranks, Airflow workers) open a fresh DB at the same moment: every statement is
``CREATE TABLE IF NOT EXISTS`` and the version row is an insert-ignore.

Never edit a released step; append a new one.

Conventions: times are UNIX seconds (DOUBLE), free-form structures are JSON text,
names are VARCHAR(255) stored verbatim. No foreign-key constraints: ids are resolved
once per logger, and FK checks would tax the per-image insert path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .dialect import Dialect


class SchemaError(RuntimeError):
    """The DB schema cannot be used by this code."""


@dataclass(frozen=True)
class Migration:
    """One schema step: a version number, a name and its DDL statements."""

    version: int
    name: str
    statements: tuple[str, ...]


# The image counts of each run summary, taken from its image rows when the summary is recorded
# (and by migration 7 for the summaries before it): the runs table reads them instead of
# aggregating every image row of a beamtime on each request.
FREEZE_SUMMARY_COUNTS = """UPDATE run_summaries SET
    n_images=(SELECT COUNT(*) FROM images i
              WHERE i.run_id=run_summaries.run_id AND i.trial_id=run_summaries.trial_id),
    n_hits=(SELECT COALESCE(SUM(hit), 0) FROM images i
            WHERE i.run_id=run_summaries.run_id AND i.trial_id=run_summaries.trial_id),
    n_indexed=(SELECT COALESCE(SUM(is_indexed), 0) FROM images i
               WHERE i.run_id=run_summaries.run_id AND i.trial_id=run_summaries.trial_id),
    n_integrated=(SELECT COUNT(*) FROM images i WHERE i.n_integrated>0
                  AND i.run_id=run_summaries.run_id AND i.trial_id=run_summaries.trial_id)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        (
            """CREATE TABLE IF NOT EXISTS experiments (
                id {id}, name VARCHAR(255) NOT NULL, created DOUBLE NOT NULL,
                UNIQUE (name)){engine}""",
            """CREATE TABLE IF NOT EXISTS runs (
                id {id}, experiment_id BIGINT NOT NULL, name VARCHAR(255) NOT NULL,
                concluded DOUBLE NULL, created DOUBLE NOT NULL,
                UNIQUE (experiment_id, name)){engine}""",
            # A trial is a versioned, immutable parameter set.
            """CREATE TABLE IF NOT EXISTS trials (
                id {id}, name VARCHAR(255) NOT NULL, version INT NOT NULL,
                params {text} NOT NULL, params_sha256 CHAR(64) NOT NULL, created DOUBLE NOT NULL,
                UNIQUE (name, version)){engine}""",
            """CREATE TABLE IF NOT EXISTS tags (
                id {id}, experiment_id BIGINT NOT NULL, name VARCHAR(255) NOT NULL,
                UNIQUE (experiment_id, name)){engine}""",
            """CREATE TABLE IF NOT EXISTS run_tags (
                run_id BIGINT NOT NULL, tag_id BIGINT NOT NULL,
                PRIMARY KEY (run_id, tag_id)){engine}""",
            # A dataset is a named combination of tags: its runs carry all of them.
            """CREATE TABLE IF NOT EXISTS datasets (
                id {id}, experiment_id BIGINT NOT NULL, name VARCHAR(255) NOT NULL,
                UNIQUE (experiment_id, name)){engine}""",
            """CREATE TABLE IF NOT EXISTS dataset_tags (
                dataset_id BIGINT NOT NULL, tag_id BIGINT NOT NULL,
                PRIMARY KEY (dataset_id, tag_id)){engine}""",
            """CREATE TABLE IF NOT EXISTS jobs (
                id {id}, run_id BIGINT NOT NULL, trial_id BIGINT NOT NULL,
                machine VARCHAR(64) NOT NULL, job_id VARCHAR(64) NOT NULL, state VARCHAR(32) NOT NULL,
                submitted DOUBLE NULL, started DOUBLE NULL, ended DOUBLE NULL,
                UNIQUE (machine, job_id)){engine}""",
            """CREATE TABLE IF NOT EXISTS transfers (
                id {id}, run_id BIGINT NOT NULL, n_bytes BIGINT NOT NULL,
                seconds DOUBLE NOT NULL, rate DOUBLE NOT NULL, recorded DOUBLE NOT NULL){engine}""",
            # One lean row per image, keyed by its natural key so a replayed batch inserts
            # nothing twice. The stage timings live in the row (t_start + ordered JSON
            # durations): the computational weather needs no dependent rows.
            """CREATE TABLE IF NOT EXISTS images (
                run_id BIGINT NOT NULL, trial_id BIGINT NOT NULL,
                chunk INT NOT NULL, event INT NOT NULL,
                hit SMALLINT NOT NULL, n_spots INT NOT NULL, is_indexed SMALLINT NOT NULL,
                n_refined INT NOT NULL, n_integrated INT NOT NULL,
                status VARCHAR(64) NOT NULL, reason VARCHAR(255) NOT NULL,
                mpi_rank INT NOT NULL, host VARCHAR(64) NOT NULL,
                t_start DOUBLE NOT NULL, timings VARCHAR(1024) NOT NULL,
                PRIMARY KEY (run_id, trial_id, chunk, event)){engine}""",
            """CREATE TABLE IF NOT EXISTS run_summaries (
                run_id BIGINT NOT NULL, trial_id BIGINT NOT NULL, status VARCHAR(32) NOT NULL,
                funnel {text} NOT NULL, timings {text} NOT NULL, finished DOUBLE NOT NULL,
                PRIMARY KEY (run_id, trial_id)){engine}""",
            # scope is 'run' or 'dataset'; scope_id the matching id.
            """CREATE TABLE IF NOT EXISTS merge_stats (
                trial_id BIGINT NOT NULL, scope VARCHAR(16) NOT NULL, scope_id BIGINT NOT NULL,
                overall {text} NOT NULL, shells {text} NOT NULL, updated DOUBLE NOT NULL,
                PRIMARY KEY (trial_id, scope, scope_id)){engine}""",
        ),
    ),
    Migration(
        2,
        "one transfer row per run",
        (
            # A replayed commit or a retried transfer task used to add a row each time: keep
            # each run's newest, then let the key make record_transfer an upsert.
            """DELETE FROM transfers WHERE id NOT IN
                (SELECT newest FROM (SELECT MAX(id) AS newest FROM transfers GROUP BY run_id) AS kept)""",
            "CREATE UNIQUE INDEX IF NOT EXISTS transfers_run ON transfers (run_id)",
        ),
    ),
    Migration(
        3,
        "pipeline state per run and trial",
        (
            # Written by the orchestration as each step of a run's pipeline starts, fails or
            # publishes: what the dashboard says about a run, with the reason of a failure and
            # a link to the task log. total: the run's number of images (for "processing n/N").
            """CREATE TABLE IF NOT EXISTS pipeline_states (
                run_id BIGINT NOT NULL, trial_id BIGINT NOT NULL, state VARCHAR(32) NOT NULL,
                detail VARCHAR(1024) NOT NULL, log_url VARCHAR(1024) NOT NULL, total INT NULL,
                updated DOUBLE NOT NULL, PRIMARY KEY (run_id, trial_id)){engine}""",
        ),
    ),
    Migration(
        4,
        "run-so-far merge per run and trial",
        (
            # The newest quick-look merge of a run being acquired (kernels.merging.running),
            # replaced as the live job goes; final=1 once it covers the whole run. NULL where
            # there is nothing to measure yet (e.g. CC1/2 with fewer than 3 pairs).
            """CREATE TABLE IF NOT EXISTS run_so_far (
                run_id BIGINT NOT NULL, trial_id BIGINT NOT NULL,
                images_merged INT NOT NULL, observations BIGINT NOT NULL, n_unique INT NOT NULL,
                completeness DOUBLE NULL, cc_half DOUBLE NULL, mean_i_over_sigma DOUBLE NULL,
                multiplicity DOUBLE NULL, d_min DOUBLE NULL, final SMALLINT NOT NULL,
                updated DOUBLE NOT NULL, PRIMARY KEY (run_id, trial_id)){engine}""",
        ),
    ),
    Migration(
        5,
        "audit log of the dashboard's actions",
        (
            # Who changed what from the dashboard, and when: tags, datasets, reprocess requests.
            # detail: JSON of the request as checked (names and numbers only, never a token).
            """CREATE TABLE IF NOT EXISTS audit_log (
                id {id}, at DOUBLE NOT NULL, username VARCHAR(255) NOT NULL,
                experiment VARCHAR(255) NOT NULL, action VARCHAR(32) NOT NULL,
                detail {text} NOT NULL, outcome VARCHAR(1024) NOT NULL){engine}""",
        ),
    ),
    Migration(
        6,
        "per-image acquisition time, saturated pixels, resolution estimate and refined cell",
        # For the dashboard's run view; 0 means "none" (an image logged before, not refined, or
        # without spots), so the per-image insert stays one format per row with no NULLs.
        tuple(
            f"ALTER TABLE images ADD COLUMN {{if_not_exists}}{column} {kind} NOT NULL DEFAULT 0"
            for column, kind in (
                ("t_acquired", "DOUBLE"),  # the frame's DAQ timestamp (UNIX seconds)
                ("n_saturated", "INT"),
                ("d_est", "DOUBLE"),
                *((c, "DOUBLE") for c in ("cell_a", "cell_b", "cell_c")),
                *((c, "DOUBLE") for c in ("cell_alpha", "cell_beta", "cell_gamma")),
            )
        ),
    ),
    Migration(
        7,
        "image counts frozen in each run summary",
        (
            *(
                f"ALTER TABLE run_summaries ADD COLUMN {{if_not_exists}}{column} INT NULL"
                for column in ("n_images", "n_hits", "n_indexed", "n_integrated")
            ),
            FREEZE_SUMMARY_COUNTS,
        ),
    ),
    Migration(
        8,
        "jobs found by run and trial",
        (
            # The runs table asks for each run's latest job of a trial: without it, one scan
            # of every job per run (half of /api/runs's query time for 500 runs).
            "CREATE INDEX IF NOT EXISTS jobs_run_trial ON jobs (run_id, trial_id, id)",
        ),
    ),
    Migration(
        9,
        "per-event split statistics per dataset and trial",
        (
            # One row per split a dataset merge made (split: its tag, e.g. 'delay_ns'). sets:
            # JSON {label: {images, cc_half, completeness}}; differences: JSON {label: {riso,
            # cc_iso, shells: [{d_min, n, riso, cc_iso}]}} of each set against the reference.
            """CREATE TABLE IF NOT EXISTS split_stats (
                trial_id BIGINT NOT NULL, dataset_id BIGINT NOT NULL, split VARCHAR(255) NOT NULL,
                reference VARCHAR(255) NOT NULL, images_in_no_set INT NOT NULL,
                sets {text} NOT NULL, differences {text} NOT NULL, updated DOUBLE NOT NULL,
                PRIMARY KEY (trial_id, dataset_id, split)){engine}""",
        ),
    ),
)


def schema_version(cursor, dialect: Dialect) -> int:
    """The highest applied migration version (0 for an empty DB)."""
    cursor.execute(
        dialect.ddl(
            "CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL PRIMARY KEY, "
            "name VARCHAR(255) NOT NULL, applied DOUBLE NOT NULL){engine}"
        )
    )
    cursor.execute("SELECT MAX(version) FROM schema_version")
    (version,) = cursor.fetchone()
    return int(version or 0)


def apply_migrations(conn, dialect: Dialect, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring a DB up to the newest step of ``migrations``; return the resulting version.

    Raises
    ------
    SchemaError
        The DB was written by newer code (its version is above the last known step), or
        the steps are not strictly increasing.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise SchemaError(f"migration versions must be strictly increasing, got {versions}")
    latest = versions[-1] if versions else 0
    cursor = conn.cursor()
    try:
        current = schema_version(cursor, dialect)
        conn.commit()
        if current > latest:
            raise SchemaError(
                f"results DB {dialect.url.redacted()} has schema version {current}, newer than "
                f"this code knows ({latest}); upgrade sfxflow"
            )
        for step in migrations:
            if step.version <= current:
                continue
            for statement in step.statements:
                try:
                    cursor.execute(dialect.ddl(statement))
                except Exception as exc:  # another process applied it a moment ago
                    if not dialect.already_applied(exc):
                        raise
            cursor.execute(
                dialect.insert_ignore("schema_version", ("version", "name", "applied")),
                (step.version, step.name, time.time()),
            )
            conn.commit()
        return max(current, latest)
    finally:
        cursor.close()
