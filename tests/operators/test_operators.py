"""Operators and triggers of the run pipeline against the real emulator, run by dag.test()."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from kernels.io.marker import adler32_hex
from operators.analysis_job import JobFailedError, SfApiJobOperator
from operators.download import DownloadResultsOperator
from operators.pipeline.job_script import batch_script
from operators.triggers import job as job_trigger
from operators.triggers.job import JobFinishedTrigger
from tests.operators.dags.operator_dags import deferred_job_dag, download_dag, facility_dag, job_dag

HOME = "/global/homes/s/sfxflow"


def job_script(workdir: str, *commands) -> str:
    return batch_script("sfx-test", workdir, [list(c) for c in commands])


def jobs_with_key(client, key: str) -> list:
    rows = client._rows("perlmutter", True, [f"user={client.user()}"])
    return [
        r
        for r in rows
        if r.get("comment", "").endswith(key) or f"{key}.try" in r.get("comment", "")
    ]


def test_job_runs_once_even_when_the_task_runs_again(sfapi_conn, client):
    workdir = f"{HOME}/once-{uuid.uuid4().hex[:6]}"  # missing: the operator creates it
    key = f"test.{uuid.uuid4().hex[:8]}"
    script = job_script(workdir, ["bash", "-c", "echo ran >> count.txt; sleep 1"])
    for dag in (deferred_job_dag, job_dag):  # the second run is a clear/retry of the same step
        run = dag.test(run_conf={"script": script, "key": key, "workdir": workdir})
        assert run.state == DagRunState.SUCCESS
    assert client.download("perlmutter", f"{workdir}/count.txt").decode().count("ran") == 1
    assert len(jobs_with_key(client, key)) == 1


def test_failed_job_fails_the_task_with_its_output_and_a_retry_resubmits(sfapi_conn, client):
    workdir = f"{HOME}/fail-{uuid.uuid4().hex[:6]}"
    client.run_command("perlmutter", f"mkdir -p {workdir}")
    key = f"test.{uuid.uuid4().hex[:8]}"
    script = job_script(workdir, ["bash", "-c", "echo boom-in-the-job; exit 3"])
    run = job_dag.test(run_conf={"script": script, "key": key, "workdir": workdir})
    assert run.state == DagRunState.FAILED
    op = SfApiJobOperator(
        task_id="job", machine="perlmutter", script=script, key=key, workdir=workdir
    )
    job = client.find_job("perlmutter", key)
    with pytest.raises(JobFailedError, match=r"(?s)ended FAILED.*boom-in-the-job"):
        op.execute_complete({}, {"jobid": job.jobid, "state": job.state, "succeeded": False})
    # never into an outage: while the system is down the failed job is not replaced yet
    sfapi_conn.admin.set_status("perlmutter", "unavailable", ["draining"])
    try:
        assert op.step().job_for(client, op.log) is None
        assert client.find_job("perlmutter", f"{key}.try1") is None
    finally:
        sfapi_conn.admin.set_status("perlmutter", "active")
    # a retry of a failed job submits a fresh one under the family's next key
    new = op.step().job_for(client, op.log)
    assert new.jobid != job.jobid and new.key == f"{key}.try1"


def test_a_later_try_waits_for_or_takes_the_job_of_an_earlier_retry(sfapi_conn, client):
    workdir = f"{HOME}/family-{uuid.uuid4().hex[:6]}"
    client.run_command("perlmutter", f"mkdir -p {workdir}")
    failing = job_script(workdir, ["bash", "-c", "exit 3"])
    for outcome, retry_script in (
        ("running", job_script(workdir, ["sleep", "60"])),
        ("succeeded", job_script(workdir, ["true"])),
    ):
        key = f"test.{uuid.uuid4().hex[:8]}"
        original = client.submit_job("perlmutter", failing, key=key)
        assert (
            client.wait("perlmutter", original.jobid, timeout=30, poll=(0.2, 1.5, 1.0)).state
            == "FAILED"
        )
        retry = client.submit_job("perlmutter", retry_script, key=f"{key}.try2")  # try 2 then died
        client.wait(
            "perlmutter",
            retry.jobid,
            until="running" if outcome == "running" else "finished",
            timeout=30,
            poll=(0.2, 1.5, 1.0),
        )
        op = SfApiJobOperator(
            task_id="job", machine="perlmutter", script=failing, key=key, workdir=workdir
        )
        assert op.step().job_for(client, op.log).jobid == retry.jobid, outcome
        assert client.find_job("perlmutter", f"{key}.try3") is None, outcome
        if outcome == "running":
            client.cancel("perlmutter", retry.jobid)


def test_planned_outage_defers_then_the_run_goes_on(sfapi_conn):
    now = datetime.now(UTC)
    sfapi_conn.admin.schedule_outage(
        "perlmutter", now - timedelta(seconds=1), now + timedelta(seconds=4)
    )
    started = time.monotonic()
    run = facility_dag.test()
    assert run.state == DagRunState.SUCCESS
    assert time.monotonic() - started >= 3.0  # it waited for the outage to end
    ti = run.get_task_instance("wait")
    assert ti.state == TaskInstanceState.SUCCESS


def test_system_down_defers_until_it_is_back(sfapi_conn):
    sfapi_conn.admin.set_status("perlmutter", "unavailable", ["cooling failure"])
    timer = threading.Timer(3.0, sfapi_conn.admin.set_status, ("perlmutter", "active"))
    timer.start()
    started = time.monotonic()
    assert facility_dag.test().state == DagRunState.SUCCESS
    assert time.monotonic() - started >= 2.5
    timer.join()


def test_download_brings_results_back_atomically(sfapi_conn, client, tmp_path):
    remote = f"{HOME}/results-{uuid.uuid4().hex[:6]}"
    client.run_command("perlmutter", f"mkdir -p {remote}")
    client.upload("perlmutter", f"{remote}/merge_stats.json", b'{"overall": {"cc_half": 0.9}}')
    client.upload("perlmutter", f"{remote}/merged.mtz", bytes(range(256)) * 10)
    run = download_dag.test(run_conf={"remote": remote, "local": str(tmp_path / "out")})
    assert run.state == DagRunState.SUCCESS
    assert (tmp_path / "out" / "merged.mtz").read_bytes() == bytes(range(256)) * 10
    assert not list((tmp_path / "out").glob(".*part"))
    op = DownloadResultsOperator(
        task_id="dl2",
        machine="perlmutter",
        remote_dir=remote,
        local_dir=str(tmp_path / "out2"),
        files=["summary.json"],
    )
    with pytest.raises(FileNotFoundError, match="summary.json not found on perlmutter"):
        op.execute({})


def test_download_brings_a_manifests_files_verified(sfapi_conn, client, tmp_path):
    remote = f"{HOME}/split-{uuid.uuid4().hex[:6]}"
    client.run_command("perlmutter", f"mkdir -p {remote}/splits/on")
    data = bytes(range(256)) * 3
    client.upload("perlmutter", f"{remote}/splits/on/a.mtz", data)
    entry = {"name": "a.mtz", "bytes": len(data), "adler32": adler32_hex(zlib.adler32(data))}

    def download(files: list[dict], out: str) -> dict:
        text = json.dumps({"files": files}).encode()
        client.upload("perlmutter", f"{remote}/splits/on/split_stats.json", text)
        manifest = ["splits/on/split_stats.json"]
        return DownloadResultsOperator(
            task_id="dl",
            machine="perlmutter",
            remote_dir=remote,
            local_dir=str(tmp_path / out),
            files=manifest,
            manifests=manifest,
        ).execute({})

    assert download([entry], "good")["splits/on/a.mtz"] == len(data)
    assert (tmp_path / "good" / "splits" / "on" / "a.mtz").read_bytes() == data
    with pytest.raises(ValueError, match=r"a.mtz arrived as 768 bytes.*says 768 bytes, 00000001"):
        download([entry | {"adler32": "00000001"}], "bad")
    assert not (tmp_path / "bad" / "splits" / "on" / "a.mtz").exists()  # never half-trusted
    with pytest.raises(ValueError, match=r"split_stats.json lists no files.*bad file name"):
        download([entry | {"name": "../../x.mtz"}], "outside")


@pytest.fixture
def quick_settle(monkeypatch):
    monkeypatch.setattr(job_trigger, "SETTLE_SECONDS", 0.2)


def test_job_trigger_reports_a_lost_job(sfapi_conn, quick_settle):
    trigger = JobFinishedTrigger("perlmutter", "999999", poll=(0.1, 1.0, 0.1), lost_after=3)

    async def first_event():
        async for event in trigger.run():
            return event.payload

    assert asyncio.run(first_event())["state"] == "LOST"


def test_job_trigger_polls_with_growing_intervals(sfapi_conn, client, quick_settle):
    workdir = f"{HOME}/poll-{uuid.uuid4().hex[:6]}"
    client.run_command("perlmutter", f"mkdir -p {workdir}")
    job = client.submit_job("perlmutter", job_script(workdir, ["sleep", "4"]))
    trigger = JobFinishedTrigger("perlmutter", job.jobid, poll=(0.25, 2.0, 8.0))
    calls, ended = [], []
    original = trigger._state

    def timed_state(c):
        calls.append(time.monotonic())
        try:
            return original(c)
        finally:
            ended.append(time.monotonic())

    trigger._state = timed_state

    async def first_event():
        async for event in trigger.run():
            return event.payload

    assert asyncio.run(first_event())["state"] == "COMPLETED"
    assert len(calls) <= 6  # 0.25, 0.5, 1, 2, 4 s apart: not one call per tick
    # the waits the trigger chooses: from one call's answer to the next call (a slow answer
    # under load is the center's time, not the trigger's interval)
    gaps = [b - a for a, b in zip(ended, calls[1:])]
    assert gaps == sorted(gaps)
