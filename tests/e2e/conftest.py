"""A whole beamtime stack on real services: emulated center, XRootD, Airflow on PostgreSQL, MariaDB."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg2
import pymysql
import pytest

from facility.beamtime_stack import running_beamtime


@pytest.fixture(scope="module")
def mariadb_url():
    name = f"sfx_e2e_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    conn.cursor().execute(f"CREATE DATABASE {name}")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
    conn.close()


@pytest.fixture(scope="module")
def postgres_url():
    name = f"af_e2e_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


@pytest.fixture(scope="module")
def workdir():
    """A world-traversable folder: the XRootD servers run as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="sfx-e2e-"))
    path.chmod(0o755)
    yield path
    if not os.environ.get("SFXFLOW_KEEP_E2E"):  # keep it to read the logs of a failure
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def beamtime(workdir, mariadb_url, postgres_url):
    with running_beamtime(
        workdir,
        experiment="e2e",
        results_db=mariadb_url,
        metadata_url=postgres_url,
        use_xrootd=True,
        ranks=2,
        facility_poll_seconds=1.0,
        job_poll=(0.5, 1.5, 3.0),
        reprocess_cron="* * * * *",
        live_linger_seconds=0.0,  # a live run's transfer defers between chunks: the triggerer's path
    ) as bt:
        yield bt
