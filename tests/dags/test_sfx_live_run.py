"""sfx_live_run in real Airflow (dag.test) against the real emulated center and real MPI jobs,
fed by the real live DAQ, which crashes: no run marker ever comes, the run is flagged stalled,
its live job ends "stalled" by itself, and what it got is merged and published as such.

The whole live path of a run that concludes is run by ``bench/live_bench.py`` (seconds each,
too slow for the default suite's budget)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState

from facility.beamline.live import LiveOptions, simulate_live
from facility.beamline.simulate import SimulationParams
from kernels.io.chunk_marker import STARTED
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE
from tests.dags.test_sfx_run import REPO, center_settings, note_of, run_notes  # noqa: F401 - fixture


def kernels_follow_live_runs() -> bool:
    """Whether this tree's kernels have ``process --live`` (built beside this DAG, issue 17)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "kernels", "process", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout
    return "--live" in help_text


pytestmark = pytest.mark.skipif(
    not kernels_follow_live_runs(),
    reason="kernels process --live (the live job) is not in this tree",
)


def live_beamtime(emulator, monkeypatch, tmp_path, experiment: str, crash_after=None):
    """sfx_live_run parsed, and a live DAQ acquiring run r0001 (8 images, chunks of 2, 4 Hz)."""
    exp = tmp_path / "exp"
    settings = center_settings(emulator, tmp_path, exp, experiment, live_timeout=4.0)
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(settings))
    params = dataclasses.replace(SimulationParams(), chunk_size=2, hit_rate=1.0)
    options = LiveOptions(frame_rate_hz=4.0, crash_after_chunks=crash_after)
    daq = threading.Thread(
        target=simulate_live,
        args=(exp, 1, 8),
        kwargs={"params": params, "options": options, "workers": 1, "log": lambda *_: None},
    )
    daq.start()
    deadline = time.monotonic() + 60
    while not (exp / "runs" / "r0001" / STARTED).exists():
        assert time.monotonic() < deadline and daq.is_alive(), "the DAQ never started the run"
        time.sleep(0.1)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sfx_live_run.py"))
    assert bag.import_errors == {}
    return bag.get_dag("sfx_live_run"), settings, daq


@pytest.mark.usefixtures("run_notes")
def test_a_crashed_daq_is_flagged_and_merged_as_far_as_it_got(sfapi_conn, monkeypatch, tmp_path):
    dag, settings, daq = live_beamtime(
        sfapi_conn, monkeypatch, tmp_path, "livecrash", crash_after=2
    )
    run = dag.test(run_conf={"run": "r0001", "trial": "t1", "trial_params": {}, "ranks": 2})
    daq.join()
    assert run.state == DagRunState.SUCCESS
    follow = run.get_task_instance("follow_chunks").xcom_pull(task_ids="follow_chunks")
    assert follow["stalled"] and follow["chunks"] == [0, 1]
    assert run.get_task_instance("wait_for_job").xcom_pull(task_ids="wait_for_job")["state"] == (
        "STALLED"
    )
    results = Path(settings["exp_dir"]) / "results" / "t1" / "r0001"
    assert (results / "images.csv").read_text().count("\n") == 5  # the 4 images it got
    with ResultsDB(settings["results_db"]) as db:
        (record,) = db.pipeline_states(db.get_trial("t1")["id"]).values()
    assert record["state"] == "published" and "no new chunk of r0001" in record["detail"]
    assert note_of(run).endswith("(stalled: no run marker)")
