"""The ``make up`` console: a failed or stuck pipeline is printed with its one-line reason.

A real stack (emulated center, Airflow on SQLite); the failure is a real one (a pipeline started
for a run that does not exist), the stuck pipeline really waits (its DAG is paused).
"""

from __future__ import annotations

import time

import pytest
import requests

from facility.beamtime_stack import running_beamtime
from facility.pipeline_watch import PipelineWatch


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_beamtime(tmp_path_factory.mktemp("console"), experiment="console") as bt:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the dag-processor has parsed sfx_run
            try:
                bt.api("dags/sfx_run")
                break
            except (requests.HTTPError, requests.Timeout):
                time.sleep(1.0)
        yield bt


def trigger(bt, dag_id: str, run_id: str, conf: dict) -> None:
    r = bt.airflow.session().post(
        f"{bt.airflow.base_url}/api/v2/dags/{dag_id}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        timeout=60,
    )
    assert r.status_code == 200, r.text


def news_until(watch: PipelineWatch, wanted, timeout: float = 300.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += watch.poll()
        if any(wanted(n) for n in seen):
            return seen
        time.sleep(1.0)
    raise AssertionError(f"never reported; saw {seen}")


def test_a_failed_pipeline_is_printed_once_with_its_reason(stack):
    watch = PipelineWatch(stack, dag_ids=("sfx_run",))
    trigger(stack, "sfx_run", "r0099__default", {"run": "r0099", "trial": "default"})
    seen = news_until(watch, lambda n: n.state == "failed")
    (failed,) = [n for n in seen if n.state == "failed"]
    assert failed.run_id == "r0099__default"
    assert failed.line.startswith("sfx_run r0099__default: FAILED, task prepare failed: ")
    assert "r0099" in failed.line.split("FAILED, ", 1)[1]  # the reason names the missing run
    assert "\n" not in failed.line
    assert watch.poll() == []  # reported once


def test_a_stuck_pipeline_is_printed_with_what_it_waits_on(stack):
    session = stack.airflow.session()
    paused = session.patch(
        f"{stack.airflow.base_url}/api/v2/dags/sfx_run", json={"is_paused": True}, timeout=60
    )
    assert paused.status_code == 200, paused.text
    try:
        watch = PipelineWatch(stack, stuck_after=5.0, dag_ids=("sfx_run",))
        trigger(stack, "sfx_run", "r0001__stuck", {"run": "r0001", "trial": "stuck"})
        seen = news_until(watch, lambda n: n.state == "stuck", timeout=120)
        (stuck,) = [n for n in seen if n.state == "stuck"]
        assert stuck.line.startswith("sfx_run r0001__stuck: STUCK, queued for ")
        assert "no task has started yet" in stuck.line
        assert all(n.state != "stuck" for n in watch.poll())  # reported once
    finally:
        session.patch(
            f"{stack.airflow.base_url}/api/v2/dags/sfx_run", json={"is_paused": False}, timeout=60
        )
