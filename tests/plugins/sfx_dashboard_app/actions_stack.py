"""A real Airflow for the action tests: api-server with the dashboard plugin, a dag-processor that
parses sfx_reprocess and sfx_dataset_merge, four logins (admin, op, user, viewer) and a small
beamtime with hostile names in its results DB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from facility.airflow_stack import AirflowStack
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import Beamtime

from .conftest import EVIL_DATASET, EVIL_RUN, EVIL_TAG, add_images

REPO = Path(__file__).resolve().parents[3]
# the default beamtime's experiment: the DAGs parse with the Variable unset, so the dag-processor
# starts at once, and the first dataset defined creates the Variable
EXPERIMENT = Beamtime().experiment
ROLES = ("admin", "op", "user", "viewer")
DAGS = ("sfx_reprocess.py", "sfx_dataset_merge.py")


def fill(url: str) -> dict:
    """Runs r0001, r0002 (published for trial t1) and a hostile-named one; a hostile tag and dataset."""
    with ResultsDB(url) as db:
        trial_id = db.ensure_trial("t1", {"spotfinder": {"snr": 6.0}})
        ids = {}
        for n, name in enumerate(("r0001", "r0002", EVIL_RUN)):
            ids[name] = db.ensure_run(EXPERIMENT, name, concluded=1000.0 + n)
            add_images(db, ids[name], trial_id, 8)
        for name in ("r0001", "r0002"):
            db.record_run_summary(ids[name], trial_id, "complete", {}, {}, finished=1100.0)
        db.tag_run(ids["r0001"], EVIL_TAG)
        db.ensure_dataset(EXPERIMENT, EVIL_DATASET, [EVIL_TAG])
    return {"trial_id": trial_id, "runs": ids}


def wait_for(check, what: str, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{what} not seen after {timeout} s")


@pytest.fixture(scope="module", name="actions_stack")
def actions_stack_fixture(tmp_path_factory):
    """The running Airflow, its results DB and the beamtime's ids."""
    results = f"sqlite:///{tmp_path_factory.mktemp('results') / 'results.db'}"
    beamtime = fill(results)
    dags = tmp_path_factory.mktemp("dags")
    for name in DAGS:  # only the DAGs the actions reach: parsed in seconds
        (dags / name).symlink_to(REPO / "dags" / name)
    stack = AirflowStack(
        tmp_path_factory.mktemp("airflow"),
        dags_folder=dags,
        env={
            "SFXFLOW_RESULTS_DB": results,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{r}:{r}" for r in ROLES),
            # the test session's bundles hold every DAG of the repo: parse only these two
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": "dags-folder",
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(dags)},
                    }
                ]
            ),
        },
    )
    try:
        stack.prepare()
        stack.start_component("dag-processor")  # starts while the api-server does
        stack.start(components=("api-server", "dag-processor"))
        admin = stack.session()
        wait_for(
            lambda: all(
                admin.get(f"{stack.base_url}/api/v2/dags/{d[:-3]}", timeout=10).ok for d in DAGS
            ),
            "the parsed DAGs",
        )
        yield {"url": stack.base_url, "results": results, "stack": stack, **beamtime}
    finally:
        stack.stop()


def jwt_of(stack: dict, role: str) -> str:
    """A fresh JWT of the login named after ``role`` (POST /auth/token, as the UI's login does)."""
    passwords = json.loads((stack["stack"].home / "passwords.json").read_text())
    answer = requests.post(
        f"{stack['url']}/auth/token",
        json={"username": role, "password": passwords[role]},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def logins(stack: dict) -> dict[str, requests.Session]:
    """role -> a session logged in like the UI (the JWT in Airflow's ``_token`` cookie)."""
    sessions = {}
    for role in ROLES:
        session = requests.Session()
        session.cookies.set("_token", jwt_of(stack, role))
        sessions[role] = session
    return sessions
