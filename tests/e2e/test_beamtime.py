"""A beamtime end to end: run concluded -> merged MTZ in the experiment folder, no human action.

Real Airflow (api-server, scheduler, dag-processor, triggerer on PostgreSQL), the emulated HPC
center (local backend, real MPI jobs), XRootD third-party copy, MariaDB results DB.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import time
from datetime import UTC, datetime, timedelta

import gemmi
import requests

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.io.marker import read_marker, run_name
from kernels.resultsdb import ResultsDB
from sfapi_client import Client
from tests.e2e.live_faults import (
    CHUNK,
    SteppedDaq,
    assert_each_image_once,
    chunks_at_center,
    image_rows,
    pipeline_state,
    wait_for,
)

IMAGES = 60


def assert_succeeds(bt, run_id: str, timeout: float = 300, dag_id: str = "sfx_run") -> None:
    state = bt.wait_for_dag_run(dag_id, run_id, timeout=timeout)["state"]
    assert state == "success", bt.explain(dag_id, run_id)


def conclude_run(bt, number: int, images: int = IMAGES) -> str:
    params = dataclasses.replace(SimulationParams(), chunk_size=images // 2)
    simulate_experiment(
        bt.exp_dir,
        1,
        images,
        seed=4,
        params=params,
        first_run=number,
        workers=1,
        log=lambda *_: None,
    )
    return f"r{number:04d}"


def center_client(bt) -> Client:
    return Client(bt.center.base_url, credentials_file=bt.center.credentials.credentials_file)


def jobs_for(bt, key_part: str) -> list[dict]:
    with center_client(bt) as client:
        rows = client._rows("perlmutter", True, [f"user={client.user()}"])
    return [r for r in rows if key_part in r.get("comment", "")]


def job_state(bt, key: str) -> str | None:
    """The state of the job with idempotency ``key`` at the center, None while there is none."""
    with center_client(bt) as client:
        job = client.find_job("perlmutter", key)
    return job.state if job is not None else None


def kill_job(bt, key: str) -> None:
    """scancel (SIGTERM: the job checkpoints) the job of ``key``; return once it has ended."""
    with center_client(bt) as client:
        job = client.find_job("perlmutter", key)
        client.cancel("perlmutter", job.jobid)
        client.wait("perlmutter", job.jobid, timeout=60, poll=(0.2, 1.5, 1.0))


def task_states(bt, dag_id: str, run_id: str) -> dict:
    try:
        return {ti["task_id"]: ti["state"] for ti in bt.task_instances(dag_id, run_id)}
    except requests.HTTPError:  # the DAG run does not exist yet
        return {}


def wait_for_task_state(bt, dag_id, run_id, task_id, states, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if task_states(bt, dag_id, run_id).get(task_id) in states:
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"{task_id} of {run_id} never in {states}: {task_states(bt, dag_id, run_id)}"
    )


def test_three_runs_reach_merged_mtz_without_human_action(beamtime):
    runs = [conclude_run(beamtime, n) for n in (1, 2, 3)]
    for run in runs:
        assert_succeeds(beamtime, f"{run}__default")
    for run in runs:
        results = beamtime.exp_dir / "results" / "default" / run
        mtz = gemmi.read_mtz_file(str(results / "merged.mtz"))
        assert mtz.spacegroup.hm == "P 43 21 2" and mtz.nreflections > 100
        assert (results / "merge_stats.json").exists() and (results / "summary.json").exists()
        assert len(jobs_for(beamtime, f"e2e.{run}.default.process")) == 1
    with ResultsDB(beamtime.beamtime.results_db) as db:
        trial_id = db.get_trial("default")["id"]
        table = {row["run"]: row for row in db.run_table("e2e", trial_id)}
    assert set(runs) <= set(table)
    assert all(table[r]["images"] == IMAGES for r in runs)


def test_dataset_merge_follows_published_runs(beamtime):
    merged = beamtime.exp_dir / "datasets" / "lysozyme" / "default" / "merged.mtz"
    deadline = time.monotonic() + 120
    while not merged.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert gemmi.read_mtz_file(str(merged)).nreflections > 100


def test_reprocessing_with_a_new_trial_keeps_both_results(beamtime):
    before = (beamtime.exp_dir / "results" / "default" / "r0001" / "merged.mtz").stat().st_mtime_ns
    s = beamtime.airflow.session()
    r = s.post(
        f"{beamtime.airflow.base_url}/api/v2/dags/sfx_reprocess/dagRuns",
        json={
            "logical_date": None,
            "conf": {"trial": "snr5", "trial_params": {"spotfinder": {"snr": 5.0}}, "runs": "1"},
        },
    )
    assert r.status_code == 200, r.text
    assert_succeeds(beamtime, "r0001__snr5")
    assert (beamtime.exp_dir / "results" / "snr5" / "r0001" / "merged.mtz").exists()
    assert (
        beamtime.exp_dir / "results" / "default" / "r0001" / "merged.mtz"
    ).stat().st_mtime_ns == before


def test_backfill_reprocesses_the_runs_of_its_intervals(beamtime):
    concluded = {
        run: datetime.fromisoformat(read_marker(beamtime.exp_dir / "runs" / run).concluded_at)
        for run in ("r0001", "r0002", "r0003")
    }
    first = min(concluded.values()).replace(second=0, microsecond=0)
    # a backfill runs only intervals that have ended: wait for the first run's minute to close
    time.sleep(
        max(
            (first + timedelta(minutes=1, seconds=1) - datetime.now(UTC)).total_seconds(),
            0,
        )
    )
    # and for the scheduled sweep of that interval to finish: a backfill skips intervals in flight
    beamtime.wait_until_idle("sfx_reprocess", since=(first + timedelta(minutes=1)).isoformat())
    now = datetime.now(UTC)
    beamtime.airflow.airflow(
        "backfill",
        "create",
        "--dag-id",
        "sfx_reprocess",
        "--from-date",
        first.isoformat(),
        "--to-date",
        now.isoformat(),
        "--reprocess-behavior",
        "completed",
        "--dag-run-conf",
        '{"trial": "bf", "trial_params": {"hitfinder": {"min_spots": 20}}}',
    )
    # intervals are minutes here; only intervals that ended before the backfill are run, and
    # "completed" re-runs the intervals the hourly (here: minutely) sweep already ran
    closed = [
        run
        for run, when in concluded.items()
        if when.replace(second=0, microsecond=0) + timedelta(minutes=1) < now
    ]
    assert closed
    for run in closed:
        assert_succeeds(beamtime, f"{run}__bf")
    assert (beamtime.exp_dir / "results" / "bf" / closed[0] / "merged.mtz").exists()


def test_invalid_params_are_refused_with_a_clear_message(beamtime):
    s = beamtime.airflow.session()
    r = s.post(
        f"{beamtime.airflow.base_url}/api/v2/dags/sfx_run/dagRuns",
        json={"logical_date": None, "conf": {"run": "r0001", "trial": "bad name!"}},
    )
    assert r.status_code == 400 and "trial" in r.text
    r = s.post(
        f"{beamtime.airflow.base_url}/api/v2/dags/sfx_run/dagRuns",
        json={
            "logical_date": None,
            "dag_run_id": "bad-params",
            "conf": {"run": "r0001", "trial": "oops", "trial_params": {"spotfinder": {"snr2": 1}}},
        },
    )
    assert r.status_code == 200
    assert beamtime.wait_for_dag_run("sfx_run", "bad-params", timeout=120)["state"] == "failed"
    assert task_states(beamtime, "sfx_run", "bad-params")["prepare"] == "failed"
    log = s.get(
        f"{beamtime.airflow.base_url}/api/v2/dags/sfx_run/dagRuns/bad-params/taskInstances/prepare/logs/1",
        timeout=10,
    ).text  # what the UI shows for the failed task
    assert "unknown spotfinder parameter" in log


def test_planned_outage_delays_a_run_which_then_completes(beamtime):
    now = datetime.now(UTC)
    # an outage with no end in sight while the run gets there (however slow the machine), ended
    # once the pipeline is seen waiting for it
    beamtime.center.admin.schedule_outage(
        "perlmutter", now, now + timedelta(hours=1), "maintenance"
    )
    run = conclude_run(beamtime, 4)
    wait_for_task_state(beamtime, "sfx_run", f"{run}__default", "wait_for_facility", {"deferred"})
    with ResultsDB(beamtime.beamtime.results_db) as db:  # the dashboard can say why it waits
        states = db.pipeline_states(db.get_trial("default")["id"])
        waiting = [s for s in states.values() if s["state"] == "waiting"]
        assert any("maintenance" in s["detail"] for s in waiting), states  # the outage's text
    assert task_states(beamtime, "sfx_run", f"{run}__default").get("process") in (
        None,
        "none",
        "scheduled",
    )
    beamtime.center.admin.clear_outages()
    assert_succeeds(beamtime, f"{run}__default")


def test_killed_scheduler_restarts_and_the_run_completes_without_a_second_job(beamtime):
    run = conclude_run(beamtime, 5, images=120)
    wait_for_task_state(beamtime, "sfx_run", f"{run}__default", "process", {"running", "deferred"})
    beamtime.airflow.stop_component("scheduler", sig=signal.SIGKILL)
    time.sleep(3)
    beamtime.airflow.start_component("scheduler")
    assert_succeeds(beamtime, f"{run}__default")
    assert len(jobs_for(beamtime, f"e2e.{run}.default.process")) == 1
    assert len(jobs_for(beamtime, f"e2e.{run}.default.merge")) == 1


def test_dashboard_shows_the_beamtime_from_the_real_pipeline(beamtime):
    s = beamtime.airflow.session()
    base = f"{beamtime.airflow.base_url}/sfxflow"
    with ResultsDB(beamtime.beamtime.results_db) as db:
        trial_id = db.get_trial("default")["id"]
    runs = {
        r["run"]: r
        for r in s.get(
            f"{base}/api/runs", params={"experiment": "e2e", "trial_id": trial_id}
        ).json()["runs"]
    }
    assert {"r0001", "r0002", "r0003"} <= set(runs)
    assert runs["r0001"]["images"] == IMAGES and runs["r0001"]["integrated"] > 0
    datasets = s.get(
        f"{base}/api/datasets", params={"experiment": "e2e", "trial_id": trial_id}
    ).json()["datasets"]
    lysozyme = next(d for d in datasets if d["name"] == "lysozyme")
    assert lysozyme["stats"]["overall"]["cc_half"] > 0.5
    weather = s.get(
        f"{base}/api/runs/{runs['r0001']['run_id']}/weather", params={"trial_id": trial_id}
    ).json()
    assert {"calibrate", "spotfind"} <= set(weather["stages"]) and weather["bars"]
    assert (
        requests.get(
            f"{base}/api/runs", params={"experiment": "e2e", "trial_id": trial_id}
        ).status_code
        == 401
    )


def test_each_pipeline_run_says_what_it_found_in_its_note(beamtime):
    run = beamtime.api("dags/sfx_run/dagRuns/r0001__default")
    assert re.fullmatch(
        rf"\d+/{IMAGES} hits \(\d+\.\d %\), \d+ indexed, CC½ [0-9.]+", run["note"] or ""
    ), run["note"]


def test_a_reprocess_fails_when_its_pipeline_fails_and_a_typo_starts_nothing(beamtime):
    s = beamtime.airflow.session()
    url = f"{beamtime.airflow.base_url}/api/v2/dags/sfx_reprocess/dagRuns"

    def reprocess(run_id: str, conf: dict) -> str:
        r = s.post(url, json={"logical_date": None, "dag_run_id": run_id, "conf": conf})
        assert r.status_code == 200, r.text
        return beamtime.wait_for_dag_run("sfx_reprocess", run_id, timeout=240)["state"]

    # "snr5" was used with other parameters (test_reprocessing_with_a_new_trial_keeps_both_results)
    conf = {"trial": "snr5", "trial_params": {"spotfinder": {"snr": 4.0}}, "runs": "2"}
    assert reprocess("clash", conf) == "failed"
    assert beamtime.wait_for_dag_run("sfx_run", "r0002__snr5", timeout=120)["state"] == "failed"
    log = s.get(
        f"{beamtime.airflow.base_url}/api/v2/dags/sfx_run/dagRuns/r0002__snr5/taskInstances/prepare/logs/1",
        timeout=10,
    ).text
    assert "trial snr5 exists with other parameters: pick a new trial name, e.g. snr5-2" in log
    assert reprocess("typo", {"trial": "t9", "runz": "1"}) == "failed"
    states = task_states(beamtime, "sfx_reprocess", "typo")
    assert states["select_runs"] == "failed"
    assert states.get("start_pipeline") in (None, "upstream_failed")
    assert reprocess("nothing", {"trial": "t9", "runs": ""}) == "success"
    assert task_states(beamtime, "sfx_run", "r0001__t9") == {}  # never created


def test_a_live_run_survives_a_triggerer_restart_and_an_outage_that_kills_its_job(beamtime):
    """Whole-stack live faults in one run (one run's cost): the triggerer restarted while
    follow_chunks is deferred between chunk events; the live job SIGTERMed (scancel) mid-run:
    replaced while the run acquires, its replacement resumes from the checkpoint and rows keep
    coming before the run marker; then a planned outage starts mid-run and the center drains,
    SIGTERMing that job too. The chunks still move, the dead job is not replaced while the outage
    lasts; once the center is back it is, and the run finishes. Every image once, each chunk
    moved once."""
    number = 41
    run, key = run_name(number), f"e2e.{run_name(number)}.default.process"
    daq = SteppedDaq(beamtime, number)
    daq.close(2)
    wait_for_task_state(beamtime, "sfx_live_run", f"{run}__default", "follow_chunks", {"deferred"})
    wait_for(lambda: chunks_at_center(beamtime, number) == 2, "chunks 0-1 at the center")
    beamtime.airflow.stop_component("triggerer")  # a restart: SIGTERM, as a deploy does
    daq.close(2)  # chunk events while no triggerer runs
    beamtime.airflow.start_component("triggerer")
    wait_for(lambda: len(image_rows(beamtime, number)) == 4 * CHUNK, "chunks 0-3 processed")
    kill_job(beamtime, key)
    time.sleep(beamtime.beamtime.job_poll[-1])  # follow_chunks looks at the job this often
    daq.close(1)  # the next chunk event resumes it: it moves chunk 4, then replaces the job
    wait_for(lambda: job_state(beamtime, f"{key}.try1") == "RUNNING", "the replacement running")
    # rows of chunk 4 from the replacement while the run is still acquiring (no run marker yet)
    wait_for(lambda: len(image_rows(beamtime, number)) == 5 * CHUNK, "chunk 4 processed")
    now = datetime.now(UTC)
    beamtime.center.admin.schedule_outage("perlmutter", now, now + timedelta(hours=1), "drain")
    kill_job(beamtime, f"{key}.try1")  # the drain
    daq.close(1)
    images = daq.conclude()
    wait_for_task_state(beamtime, "sfx_live_run", f"{run}__default", "wait_for_job", {"deferred"})
    assert chunks_at_center(beamtime, number) == 6  # the transfer went on
    # deferred with no replacement: it waits for the center, not for a job
    assert job_state(beamtime, f"{key}.try2") is None
    beamtime.center.admin.clear_outages()
    assert_succeeds(beamtime, f"{run}__default", dag_id="sfx_live_run")
    assert_each_image_once(beamtime, number, images)
    follow = beamtime.api(
        f"dags/sfx_live_run/dagRuns/{run}__default/taskInstances/follow_chunks/xcomEntries/return_value"
    )["value"]
    assert follow["chunks"] == list(range(6)) and not follow["stalled"]
    with center_client(beamtime) as client:
        jobs = client.find_jobs("perlmutter", [key] + [f"{key}.try{n}" for n in (1, 2, 3)])
    assert sorted(jobs) == [key, f"{key}.try1", f"{key}.try2"]
    assert jobs[key].state == jobs[f"{key}.try1"].state == "CANCELLED"
    summary = json.loads((beamtime.exp_dir / "results/default" / run / "summary.json").read_text())
    assert summary["sessions"] == 3 and summary["images"] == images  # resumed, not redone
    state = pipeline_state(beamtime, number)  # the dashboard's "processing n/N"
    assert (state["state"], state["total"]) == ("published", images)
