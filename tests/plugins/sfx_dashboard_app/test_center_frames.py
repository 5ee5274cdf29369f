"""Frames only the center holds: a run with no beamline-side folder is fetched through the real
SF API emulator into the bounded local cache, chunk by chunk as events are asked for, shown as
if it were local, and refused clearly when the center is down, has no such run, or holds a
chunk over its download limit."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.ports import free_port
from facility.sfapi.testing import running_emulator
from kernels.process import default_calibration
from kernels.resultsdb import ResultsDB
from plugins.sfx_dashboard_app import create_app
from plugins.sfx_dashboard_app.center_frames import CenterRunCache, folder_bytes
from sfapi_client import Client

from .frames_fixtures import EXPERIMENT, TRIAL, VARIABLE_ENV
from .test_frames import frame

HPC_DIR = "/pscratch/sd/s/sfxflow/cxi"
CONN_ENV = "AIRFLOW_CONN_SFAPI_DEFAULT"
LIMIT = 10 << 20  # the center's download limit: above the calibration snapshot's 9.4 MB


@pytest.fixture(scope="module")
def center(tmp_path_factory):
    """A tiny simulated run r0001 (3 chunks) kept on the beamline side, its copy as r0004 and
    r0006 only at the center (with its calibration snapshot, as the transfer sends it), r0007
    there with a chunk over the center's 10 MiB download limit (its events extracted there), and
    the results DB."""
    tmp = tmp_path_factory.mktemp("center-frames")
    sim = tmp / "sim"
    params = dataclasses.replace(SimulationParams(), chunk_size=2)
    simulate_experiment(sim, runs=1, images=6, seed=5, params=params, log=lambda *_: None)
    run = sim / "runs" / "r0001"
    exp = tmp / "exp"
    shutil.copytree(run, exp / "runs" / "r0001")
    shutil.copyfile(default_calibration(run), exp / "runs" / "r0001" / "calibration.h5")
    url = f"sqlite:///{tmp / 'results.db'}"
    with ResultsDB(url) as db:
        ids = {"trial_id": db.ensure_trial(TRIAL, {})}
        for name in ("r0001", "r0004", "r0005", "r0007"):
            ids[name] = db.ensure_run(EXPERIMENT, name, concluded=1000.0)
    with running_emulator(tmp / "emulator", in_process=True, max_upload_bytes=LIMIT) as emu:
        runs = emu.root / HPC_DIR.lstrip("/") / "runs"
        for name in ("r0004", "r0006", "r0007"):
            shutil.copytree(exp / "runs" / "r0001", runs / name)
        with open(runs / "r0007" / "r0001-c02.h5", "ab") as chunk:  # a chunk of a bigger run
            chunk.truncate(LIMIT + (1 << 20))
        yield {"emu": emu, "exp": exp, "url": url, "cache": tmp / "cache", **ids}


@pytest.fixture
def viewer(center, token, monkeypatch) -> TestClient:
    return viewer_of(center, token, monkeypatch)


def viewer_of(center: dict, token: str, monkeypatch) -> TestClient:
    """The app with the Variable naming ``center``'s experiment folder, its emulator as the
    SF API connection and its frame cache."""
    variable = {"experiment": EXPERIMENT, "exp_dir": str(center["exp"]), "hpc_dir": HPC_DIR}
    monkeypatch.setenv(VARIABLE_ENV, json.dumps(variable))
    monkeypatch.setenv("SFXFLOW_FRAME_CACHE", str(center["cache"]))
    credentials = str(center["emu"].credentials.credentials_file)
    connection = {"conn_type": "http", "host": center["emu"].base_url}
    monkeypatch.setenv(CONN_ENV, json.dumps({**connection, "extra": {"credentials_file": credentials}}))  # fmt: skip
    client = TestClient(create_app(center["url"]), base_url="http://127.0.0.1")
    client.cookies.set("_token", token)
    return client


def test_a_run_only_the_center_holds_is_shown_as_the_local_one(viewer, center):
    local_header, local = frame(viewer, center["r0001"], center["trial_id"], chunk=1, event=1)
    header, fetched = frame(viewer, center["r0004"], center["trial_id"], chunk=1, event=1)
    np.testing.assert_array_equal(fetched, local)
    assert header["spots"] == local_header["spots"]
    cached = list(center["cache"].glob("*/r0004"))
    assert len(cached) == 1 and (cached[0] / "CONCLUDED.json").is_file()
    # only the chunk holding the event came, beside the run's small files
    assert sorted(p.name for p in cached[0].glob("*-c0?.h5")) == ["r0001-c01.h5"]
    _, first = frame(viewer, center["r0004"], center["trial_id"], chunk=0, event=0)
    _, local_first = frame(viewer, center["r0001"], center["trial_id"], chunk=0, event=0)
    np.testing.assert_array_equal(first, local_first)
    assert sorted(p.name for p in cached[0].glob("*-c0?.h5")) == ["r0001-c00.h5", "r0001-c01.h5"]
    # the next request reads the cache, not the center: the center's copy is away meanwhile
    gone = center["emu"].root / HPC_DIR.lstrip("/") / "runs" / "r0004"
    shutil.move(gone, gone.with_name(".r0004-away"))
    try:
        page = viewer.get("/frames", params={"run_id": center["r0004"], "trial_id": center["trial_id"]})  # fmt: skip
        assert page.status_code == 200, page.text
    finally:
        shutil.move(gone.with_name(".r0004-away"), gone)
    # the cache dropped it (as its LRU would): fetched again, a new folder, the same frame
    shutil.rmtree(cached[0])
    _, again = frame(viewer, center["r0004"], center["trial_id"], chunk=1, event=1)
    np.testing.assert_array_equal(again, local)
    assert (cached[0] / "CONCLUDED.json").is_file()


def test_a_run_nowhere_is_a_404_naming_both_sides(viewer, center):
    response = viewer.get("/frames/data", params={"run_id": center["r0005"], "trial_id": center["trial_id"]})  # fmt: skip
    assert response.status_code == 404
    assert "nor at the center" in response.json()["detail"] and f"{HPC_DIR}/runs/r0005" in response.json()["detail"]  # fmt: skip


def down_connection() -> dict:
    """An SF API connection to a port nothing listens on."""
    return {"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}/api/v1.2", "password": "t"}  # fmt: skip


def test_a_center_down_is_a_503_saying_so(viewer, center, monkeypatch):
    monkeypatch.setenv(CONN_ENV, json.dumps(down_connection()))
    shutil.rmtree(center["cache"], ignore_errors=True)
    response = viewer.get("/frames/data", params={"run_id": center["r0004"], "trial_id": center["trial_id"]})  # fmt: skip
    assert response.status_code == 503
    assert "the center could not send" in response.json()["detail"]
    assert not list(center["cache"].glob("*/r0004"))  # nothing half-fetched is kept


def test_the_cache_drops_the_least_recently_used_run_beyond_its_bytes(center, tmp_path):
    one_run = folder_bytes(center["exp"] / "runs" / "r0001")
    cache = CenterRunCache(tmp_path, max_bytes=int(1.5 * one_run))
    emu = center["emu"]
    with Client(emu.base_url, credentials_file=emu.credentials.credentials_file) as client:
        first = cache.folder(client, "perlmutter", f"{HPC_DIR}/runs", "r0004", chunks=range(3))
        assert folder_bytes(first) == one_run  # every chunk asked for: the whole run
        second = cache.folder(client, "perlmutter", f"{HPC_DIR}/runs", "r0006", chunks=range(3))
    assert second.is_dir() and not first.exists()


def test_an_event_of_a_chunk_over_the_centers_download_limit_is_extracted_there(viewer, center):
    ids = {"run_id": center["r0007"], "trial_id": center["trial_id"]}
    shown = viewer.get("/frames/data", params={**ids, "chunk": 0, "event": 1})
    assert shown.status_code == 200  # its other chunks come whole
    header, extracted = frame(viewer, center["r0007"], center["trial_id"], chunk=2, event=1)
    local_header, local = frame(viewer, center["r0001"], center["trial_id"], chunk=2, event=1)
    np.testing.assert_array_equal(extracted, local)
    assert header["spots"] == local_header["spots"]
    (cached,) = center["cache"].glob("*/r0007")
    assert not (cached / "r0001-c02.h5").exists() and (cached / "r0001-c02.e1.h5").is_file()
    assert not list(cached.glob(".fetch-*"))
    at_center = center["emu"].root / HPC_DIR.lstrip("/") / "runs" / "r0007"
    assert not [p.name for p in at_center.iterdir() if p.name.startswith(".")]  # removed there
    missing = viewer.get("/frames/data", params={**ids, "chunk": 2, "event": 5})
    assert missing.status_code == 404
    assert "r0007 has no event 5 in chunk 2 (2 events)" in missing.json()["detail"]
    missing = viewer.get("/frames/data", params={**ids, "chunk": 5, "event": 0})
    assert missing.status_code == 404 and "has no chunk 5 (3 chunks)" in missing.json()["detail"]


def test_an_extraction_with_the_center_down_is_a_503_saying_so(viewer, center, monkeypatch):
    ids = {"run_id": center["r0007"], "trial_id": center["trial_id"]}
    assert viewer.get("/frames/data", params={**ids, "chunk": 0, "event": 0}).status_code == 200
    monkeypatch.setenv(CONN_ENV, json.dumps(down_connection()))
    refused = viewer.get("/frames/data", params={**ids, "chunk": 2, "event": 0})
    assert refused.status_code == 503
    assert "the center could not extract event 0 of chunk 2" in refused.json()["detail"]
    (cached,) = center["cache"].glob("*/r0007")
    assert not list(cached.glob("r0001-c02.e0.h5")) and not list(cached.glob(".fetch-*"))


@pytest.fixture(scope="module")
def default_limit(center, tmp_path_factory):
    """r0008 and r0009 only at a center with the SF API's default 8 MiB download limit, under
    their 9.4 MB (9.0 MiB) calibration snapshot; the experiment's ``calib/calibration.h5`` that snapshot."""
    tmp = tmp_path_factory.mktemp("default-limit")
    run, exp = center["exp"] / "runs" / "r0001", tmp / "exp"
    shutil.copytree(run, exp / "runs" / "r0001")  # the beamline side's run, to compare with
    (exp / "calib").mkdir()
    shutil.copyfile(run / "calibration.h5", exp / "calib" / "calibration.h5")
    with ResultsDB(center["url"]) as db:
        ids = {name: db.ensure_run(EXPERIMENT, name, concluded=1000.0) for name in ("r0008", "r0009")}  # fmt: skip
    with running_emulator(tmp / "emulator", in_process=True) as emu:
        for name in ids:
            shutil.copytree(run, emu.root / HPC_DIR.lstrip("/") / "runs" / name)
        yield {**center, **ids, "emu": emu, "exp": exp, "cache": tmp / "cache"}


def test_the_snapshot_over_the_default_limit_is_copied_from_the_experiments_calibration(
    default_limit, token, monkeypatch
):
    place = default_limit
    snapshot = place["exp"] / "calib" / "calibration.h5"
    assert snapshot.stat().st_size > 8 << 20  # over the limit: it could not be downloaded
    viewer = viewer_of(place, token, monkeypatch)
    _, fetched = frame(viewer, place["r0008"], place["trial_id"], chunk=1, event=1)
    _, local = frame(viewer, place["r0001"], place["trial_id"], chunk=1, event=1)
    np.testing.assert_array_equal(fetched, local)
    (cached,) = place["cache"].glob("*/r0008")
    assert (cached / "calibration.h5").read_bytes() == snapshot.read_bytes()
    # the calibration changed since the run: not the run's snapshot, so downloaded, and refused
    with open(snapshot, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    refused = viewer.get("/frames/data", params={"run_id": place["r0009"], "trial_id": place["trial_id"]})  # fmt: skip
    assert refused.status_code == 503
    mib = snapshot.stat().st_size / 2**20
    assert f"r0009/calibration.h5 ({mib:.1f} MiB" in refused.json()["detail"]
    assert "File too large" in refused.json()["detail"]
