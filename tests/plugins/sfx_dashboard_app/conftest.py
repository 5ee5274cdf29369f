"""Fixtures of the dashboard tests: a results DB with a small beamtime, and Airflow logins."""

from __future__ import annotations

import secrets
import uuid

import pymysql
import pytest

from kernels.resultsdb import ResultsDB
from kernels.resultsdb.logger import ImageRow, ImageRowEncoder

# Names a user could type, each one an attack on a page that forgets to escape.
EVIL = "<script>alert(1)</script>"
EXPERIMENT = f"cxi{EVIL}"
EVIL_RUN = EVIL
EVIL_TAG = '<img src=x onerror="alert(2)">'
EVIL_DATASET = "lysozyme'\"><svg onload=alert(3)>"
EVIL_TRIAL = "trial<b>$x$</b>"


def add_images(
    db: ResultsDB, run_id: int, trial_id: int, n: int, start: int = 0, t0: float = 1000.0
) -> None:
    """``n`` processed images (events start..start+n-1): every 2nd a hit, every 4th indexed and
    integrated with a refined cell; one saturated pixel per 10th event; acquired at 10 Hz."""
    encode = ImageRowEncoder(db.dialect, run_id, trial_id)
    rows = []
    for event in range(start, start + n):
        hit, indexed = event % 2 == 0, event % 4 == 0
        timings = {"calibrate": 0.02, "spotfind": 0.03, "index": 0.04 * indexed}
        rows.append(
            encode(
                ImageRow(
                    0, event, hit, 30 if hit else 2, indexed, 40 * indexed, 90 * indexed,
                    "indexed" if indexed else ("hit" if hit else "blank"),
                    "" if indexed else ("not indexed: no lattice" if hit else f"miss: {event % 3} spots < 10"),
                    event % 3 + 1, "nid0001", t0 + 0.1 * event, timings,
                    t_acquired=t0 - 50.0 + 0.1 * event, n_saturated=int(event % 10 == 0),
                    d_est=2.0 + event % 5 * 0.1 if hit else 0.0,
                    cell=(79.0 + event % 3 * 0.1, 79.1, 38.4, 90.0, 90.0, 90.0) if indexed else (),
                )
            )
        )  # fmt: skip
    db.insert_images(rows)


def fill_beamtime(url: str) -> dict:
    """A beamtime of three runs for one trial: done (merged), running, new; plus one dataset.

    Returns the ids and names the tests look for.
    """
    with ResultsDB(url) as db:
        trial_id = db.ensure_trial(EVIL_TRIAL, {"spot_threshold": 6.0})
        done = db.ensure_run(EXPERIMENT, "r0001", concluded=1000.0)
        running = db.ensure_run(EXPERIMENT, EVIL_RUN, concluded=1100.0)
        new = db.ensure_run(EXPERIMENT, "r0003", concluded=1200.0)
        add_images(db, done, trial_id, 40)
        db.record_job(
            done, trial_id, "perlmutter", "101", "COMPLETED", submitted=1010.0, ended=1050.0
        )
        db.record_run_summary(
            done, trial_id, "complete", {"images": 40}, {"wall_seconds": 30.0}, finished=1090.0
        )
        add_images(db, running, trial_id, 12, t0=1150.0)
        db.record_job(running, trial_id, "perlmutter", "102", "RUNNING", submitted=1110.0)
        for run_id in (done, running):
            db.tag_run(run_id, EVIL_TAG)
        dataset_id = db.ensure_dataset(EXPERIMENT, EVIL_DATASET, [EVIL_TAG])
        shells = [
            {
                "d_min": d,
                "d_max": d + 0.5,
                "completeness": c,
                "cc_half": cc,
                "mean_i_over_sigma": s,
                "multiplicity": 4.0,
                "n_unique": 100,
                "n_possible": 110,
            }
            for d, c, cc, s in (
                (3.0, 0.99, 0.98, 12.0),
                (2.5, 0.95, 0.9, 6.0),
                (2.0, 0.8, float("nan"), 1.5),
            )
        ]
        overall = {
            "d_min": 2.0,
            "d_max": 20.0,
            "completeness": 0.913,
            "cc_half": 0.97,
            "mean_i_over_sigma": 7.25,
            "multiplicity": 4.0,
            "n_unique": 300,
        }
        db.record_merge_stats(trial_id, overall, shells, dataset_id=dataset_id)
    return {
        "url": url,
        "trial_id": trial_id,
        "done": done,
        "running": running,
        "new": new,
        "dataset_id": dataset_id,
    }


MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


@pytest.fixture(params=["sqlite", "mariadb"])
def results_db_url(request, tmp_path):
    """A fresh, empty results DB: a SQLite file, or a database on the machine's MariaDB (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    name = f"sfx_dash_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(**MARIADB, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    with pymysql.connect(**MARIADB, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def beamtime(results_db_url) -> dict:
    """:func:`fill_beamtime`'s beamtime in a fresh results DB (SQLite and MariaDB)."""
    return fill_beamtime(results_db_url)


@pytest.fixture(scope="session")
def auth_manager(airflow_db, tmp_path_factory):
    """Airflow's configured auth manager (simple), initialised with a test-only JWT secret."""
    home = tmp_path_factory.mktemp("auth")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "viewer:viewer")
        patch.setenv(
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(home / "passwords.json")
        )
        from airflow.api_fastapi.app import create_auth_manager

        manager = create_auth_manager()
        manager.init()
        yield manager


@pytest.fixture
def token(auth_manager) -> str:
    """A valid UI/REST JWT of a viewer."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))


@pytest.fixture(scope="session")
def dashboard_beamtimes(sim_experiment, tmp_path_factory) -> dict:
    """One SQLite results DB behind the one api-server of the browser tests: the frame viewer's
    beamtime (``frames_fixtures.make_beamtime``), then :func:`fill_beamtime`'s, newest, so the
    overview opens on it (experiments and trials are listed newest first)."""
    from .frames_fixtures import make_beamtime

    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard-db') / 'results.db'}"
    exp = tmp_path_factory.mktemp("frames") / "experiment"
    frames = make_beamtime(exp, sim_experiment / "runs" / "r0001", url)
    return {"frames": frames, "overview": fill_beamtime(url)}


@pytest.fixture(scope="session")
def frames_beamtime(dashboard_beamtimes) -> dict:
    """The frame viewer's beamtime: processing frames is the slow part, so it is made once."""
    return dashboard_beamtimes["frames"]


@pytest.fixture(scope="session")
def dashboard_server(dashboard_beamtimes, tmp_path_factory):
    """Airflow's api-server (with the project's plugins) over that DB, the beamtime Variable
    naming the frames' experiment folder; started once for every browser test."""
    from facility.airflow_stack import AirflowStack

    from .frames_fixtures import VARIABLE_ENV, beamtime_variable

    env = {
        "SFXFLOW_RESULTS_DB": dashboard_beamtimes["frames"]["url"],
        VARIABLE_ENV: beamtime_variable(dashboard_beamtimes["frames"]["exp"]),
    }
    stack = AirflowStack(tmp_path_factory.mktemp("airflow"), env=env)
    try:
        yield stack.start(components=("api-server",))
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def setup_outputs(tmp_path_factory) -> dict:
    """One finished setup run's outputs (``folder``) and reports, made once for the session."""
    from .setup_fixtures import write_setup_outputs

    return write_setup_outputs(tmp_path_factory.mktemp("setup-outputs") / "setup")
