"""sfx_dataset_merge in real Airflow (dag.test) against the real emulated center: a dataset
naming per-event splits gets its merge and one merge per split, with the isomorphous
differences, brought back (the split MTZs verified against their split_stats.json), summed up
and recorded in the results DB; a split of no known form is refused with the settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState

from kernels.io.marker import adler32_file
from kernels.io.mtz import read_intensities
from kernels.process import process_run
from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import VARIABLE, Beamtime
from tests.dags.test_sfx_run import REPO, center_settings

SPLITS = ["laser_on", "delay_ns=0,500,2000"]


def dataset_merge_dag(monkeypatch, settings: dict):
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(settings))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sfx_dataset_merge.py"))
    assert bag.import_errors == {}
    return bag.get_dag("sfx_dataset_merge")


def test_a_dataset_merge_with_splits(
    sfapi_conn, pump_probe_experiment, monkeypatch, tmp_path
):  # fmt: skip
    exp = tmp_path / "exp"
    shutil.copytree(pump_probe_experiment, exp)
    settings = center_settings(
        sfapi_conn,
        tmp_path,
        exp,
        "unitsplit",
        datasets={"pp": ["pp"]},
        dataset_splits={"pp": SPLITS},
    )
    bt = Beamtime.from_dict(settings)
    remote = sfapi_conn.root / bt.hpc_results_dir("r0001", "t1").lstrip("/")
    process_run(exp / "runs" / "r0001", remote, trial="t1")  # the run's results at the center
    local = Path(bt.local_results_dir("r0001", "t1"))
    local.mkdir(parents=True)
    shutil.copy(remote / "summary.json", local)
    with ResultsDB(bt.results_db) as db:
        db.tag_run(db.ensure_run(bt.experiment, "r0001"), "pp")
        db.ensure_dataset(bt.experiment, "pp", ["pp"])
        db.ensure_trial("t1", {})

    dag = dataset_merge_dag(monkeypatch, settings)
    run = dag.test(run_conf={"published": [{"run": "r0001", "trial": "t1"}]})
    assert run.state == DagRunState.SUCCESS
    folder = Path(bt.local_dataset_dir("pp", "t1"))
    assert (folder / "merged.mtz").exists()
    laser = json.loads((folder / "splits" / "laser_on" / "split_stats.json").read_text())
    merged = json.loads((folder / "merge_stats.json").read_text())
    assert sum(s["images"] for s in laser["sets"].values()) == merged["images"]
    assert set(laser["sets"]) == {"0", "1"} and 0 < laser["differences"]["1"]["riso"] < 1
    delay = json.loads((folder / "splits" / "delay_ns" / "split_stats.json").read_text())
    assert sorted(delay["sets"]) == ["0-500", "500-2000"]
    assert delay["images_in_no_set"] == laser["sets"]["0"]["images"]  # dark shots: no delay
    for split in (laser, delay):  # every set's MTZ and every difference's, home and whole
        home = folder / "splits" / split["split"]["tag"]
        assert len(split["files"]) == 2 * len(split["sets"]) - 1
        for entry in split["files"]:
            assert adler32_file(home / entry["name"]) == entry["adler32"]
    assert len(read_intensities(folder / "splits" / "laser_on" / "merged_laser_on-1.mtz")[0])
    (record,) = [ti for ti in run.get_task_instances() if ti.task_id == "record"]
    (summary,) = record.xcom_pull(task_ids="record")
    with ResultsDB(bt.results_db) as db:
        dataset_id = db.ensure_dataset(bt.experiment, "pp", ["pp"])
        stored = db.split_stats(db.get_trial("t1")["id"], dataset_id)
    assert sorted(stored) == ["delay_ns", "laser_on"]
    on = stored["laser_on"]
    assert {label: s["images"] for label, s in on["sets"].items()} == {
        label: s["images"] for label, s in laser["sets"].items()
    }
    assert on["differences"]["1"]["riso"] == laser["differences"]["1"]["riso"]
    assert on["differences"]["1"]["shells"] == laser["differences"]["1"]["shells"]
    assert on["sets"]["1"]["cc_half"] == laser["sets"]["1"]["overall"]["cc_half"]
    assert summary["splits"]["laser_on"]["differences"]["1"]["cc_iso"] > 0


def test_splits_of_no_known_form_are_refused():
    datasets = {"pp": ["pp"]}
    with pytest.raises(ValueError, match=r"'laser on' is not TAG or TAG=EDGE"):
        Beamtime(datasets=datasets, dataset_splits={"pp": ["laser on"]})
    with pytest.raises(ValueError, match="no such dataset"):
        Beamtime(datasets=datasets, dataset_splits={"other": ["laser_on"]})
    with pytest.raises(ValueError, match="a tag split twice"):
        Beamtime(datasets=datasets, dataset_splits={"pp": ["delay_ns=0,5", "delay_ns=0,9"]})
