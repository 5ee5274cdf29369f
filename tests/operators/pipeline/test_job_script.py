"""Job scripts and run requests: validated names, quoted values, no secrets, clear refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.io.marker import MARKER, write_marker
from operators.pipeline.beamtime import Beamtime
from operators.pipeline.job_script import batch_script
from operators.pipeline.reprocess import concluded_runs, parse_run_range
from operators.pipeline.run import RunRequestError, prepare_run

REPO = Path(__file__).resolve().parents[3]


def test_script_quotes_values_and_embeds_files(tmp_path):
    script = batch_script(
        "sfx-r0001-t1",
        str(tmp_path),
        [["echo", "a b; rm -rf /", "$HOME"]],
        files={"params.json": json.dumps({"x": "$(reboot)"})},
        env={"UCX_TLS": "self,sm"},
    )
    (tmp_path / "job.sh").write_text(script)
    out = subprocess.run(
        ["bash", str(tmp_path / "job.sh")], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout == "a b; rm -rf / $HOME\n"
    assert json.loads((tmp_path / "params.json").read_text()) == {"x": "$(reboot)"}
    assert "#SBATCH --ntasks=1" in script and "export UCX_TLS=self,sm" in script


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"job_name": "x; rm"}, "invalid job name"),
        ({"ntasks": 0}, "ntasks"),
        ({"time_limit": "forever"}, "HH:MM:SS"),
        ({"workdir": "relative/dir"}, "absolute path"),
        ({"env": {"bad-name": "1"}}, "environment variable"),
        ({"files": {"p.json": "two\nlines"}}, "single line"),
    ],
)
def test_script_refuses_bad_values(kwargs, words):
    args = {"job_name": "sfx", "workdir": "/scratch/x", "commands": [["true"]], **kwargs}
    with pytest.raises(ValueError, match=words):
        batch_script(**args)


@pytest.fixture(scope="module")
def beamtime(tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp")
    simulate_experiment(
        exp,
        1,
        4,
        params=dataclasses.replace(SimulationParams(), chunk_size=2),
        workers=1,
        log=lambda *_: None,
    )
    return Beamtime(
        experiment="unit", exp_dir=str(exp), results_db=f"sqlite:///{exp / 'results.db'}"
    )


def test_prepare_builds_scripts_without_secrets(beamtime):
    info = prepare_run(beamtime, "r0001", "t1", {"spotfinder": {"snr": 5}}, 3)
    assert info["process_key"] == "unit.r0001.t1.process"
    assert "-n 3" in info["process_script"] and "../../../runs/r0001" in info["process_script"]
    # image rows go to the beamtime's experiment, whatever the HPC folders are called
    assert "--experiment unit" in info["process_script"]
    assert '"snr": 5.0' in info["process_script"]
    assert {f["name"] for f in info["files"]} >= {
        "calibration.h5",
        "r0001-c00.h5",
        "r0001-c01.idx.h5",
    }
    for script in (info["process_script"], info["merge_script"]):
        assert "password" not in script.lower() and "token" not in script.lower()


@pytest.mark.parametrize(
    "run, trial, params, words",
    [
        ("r0009", "t1", {}, "run not concluded"),
        ("../etc", "t1", {}, "invalid run name"),
        ("r0001", "t 1", {}, "invalid trial name"),
        ("r0001", "t1", {"spotfinder": {"nope": 1}}, "unknown spotfinder parameter"),
    ],
)
def test_prepare_refuses_bad_requests(beamtime, run, trial, params, words):
    with pytest.raises(RunRequestError, match=words):
        prepare_run(beamtime, run, trial, params, 2)


def test_a_trial_never_changes_its_parameters(beamtime):
    prepare_run(beamtime, "r0001", "fixed", {"hitfinder": {"min_spots": 10}}, 2)
    prepare_run(beamtime, "r0001", "fixed", {"hitfinder": {"min_spots": 10}}, 2)  # same: fine
    with pytest.raises(RunRequestError, match="new trial name"):
        prepare_run(beamtime, "r0001", "fixed", {"hitfinder": {"min_spots": 11}}, 2)


def test_run_ranges_and_intervals(beamtime):
    assert parse_run_range("1-3, 7") == ["r0001", "r0002", "r0003", "r0007"]
    assert parse_run_range("10001, 9999-10000") == [
        "r9999",
        "r10000",
        "r10001",
    ]  # by number, past r9999
    for bad in ("1-", "3-1", "a", "1;2"):
        with pytest.raises(ValueError, match="bad run range"):
            parse_run_range(bad)
    assert concluded_runs(beamtime.exp_dir) == ["r0001"]


def test_runs_past_r9999_are_swept_and_accepted_by_the_run_dag(beamtime, tmp_path, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    exp = tmp_path / "exp"
    runs = Path(beamtime.exp_dir) / "runs"
    shutil.copytree(runs / "r0001", exp / "runs" / "r10000")
    (exp / "runs" / "r10000" / MARKER).unlink()
    write_marker(exp / "runs" / "r10000", 10000)
    shutil.copytree(runs / "r0001", exp / "runs" / "r9999")
    assert concluded_runs(exp) == ["r9999", "r10000"]  # the sweep finds it, oldest first

    dag = DagBag(dag_folder=str(REPO / "dags" / "sfx_run.py")).get_dag("sfx_run")
    run_param = dag.params.get_param("run")  # what creating a DAG run validates its conf with
    assert run_param.resolve("r10000") == "r10000"
    with pytest.raises(ParamValidationError):
        run_param.resolve("r123")


def test_refusals_say_what_the_user_can_do(beamtime):
    with pytest.raises(RunRequestError, match=r"run r0099 does not exist under .*/runs$"):
        prepare_run(beamtime, "r0099", "t1", {}, 2)
    prepare_run(beamtime, "r0001", "snr5", {"spotfinder": {"snr": 5}}, 2)
    with pytest.raises(
        RunRequestError,
        match="trial snr5 exists with other parameters: pick a new trial name, e.g. snr5-2",
    ):
        prepare_run(beamtime, "r0001", "snr5", {"spotfinder": {"snr": 4}}, 2)
