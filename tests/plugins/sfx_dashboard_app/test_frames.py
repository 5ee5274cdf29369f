"""The frame viewer and virtual powder routes against a simulated run processed by the kernels,
the real CSPAD stills (64 ASICs), a real SQLite results DB and Airflow's real auth manager."""

from __future__ import annotations

import html
import json
import struct

import h5py
import numpy as np
import pytest
from fastapi.testclient import TestClient

from kernels.io.readers.cbf import CbfReader
from kernels.io.runformat import open_run
from kernels.process import default_calibration
from kernels.stages.calibration import calibrate, load_calibration, plan_calibration
from plugins.sfx_dashboard_app import create_app
from plugins.sfx_dashboard_app.frame_source import FrameNotFound, run_folder
from plugins.sfx_dashboard_app.frames import lab_positions
from plugins.sfx_dashboard_app.powder import bragg_d, two_theta_deg

from .frames_fixtures import (
    CSPAD,
    CSPAD_FRAMES,
    CSPAD_TRIAL,
    VARIABLE_ENV,
    beamtime_variable,
)
from .test_app import Elements


@pytest.fixture(scope="module")
def app(frames_beamtime):
    return create_app(frames_beamtime["url"])  # one app: its LRU of opened runs is shared


@pytest.fixture
def viewer(app, frames_beamtime, token, monkeypatch) -> TestClient:
    monkeypatch.setenv(VARIABLE_ENV, beamtime_variable(frames_beamtime["exp"]))
    client = TestClient(app, base_url="http://127.0.0.1")
    client.cookies.set("_token", token)
    return client


def decode(body: bytes) -> tuple[dict, np.ndarray]:
    """The viewer's binary: u32 length | JSON header | uint16 raster (0 = no pixel, NaN here;
    else value = (count - 1) * step)."""
    (length,) = struct.unpack("<I", body[:4])
    header = json.loads(body[4 : 4 + length])
    counts = np.frombuffer(body[4 + length :], dtype="<u2").astype(float)
    counts[counts == 0] = np.nan
    return header, (counts - 1).reshape(header["height"], header["width"]) * header["step"]


def frame(client, run_id, trial_id, **where) -> tuple[dict, np.ndarray]:
    response = client.get("/frames/data", params={"run_id": run_id, "trial_id": trial_id, **where})
    assert response.status_code == 200, response.text
    return decode(response.content)


def nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point of ``a`` (n, 2) to the nearest of ``b`` (m, 2)."""
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


@pytest.mark.parametrize("path", ["/frames/data", "/api/powder", "/frame_viewer.js", "/powder.js"])
def test_anonymous_is_refused(app, path):
    response = TestClient(app).get(path, params={"run_id": 1, "trial_id": 1})
    assert response.status_code == 401


def test_anonymous_page_goes_to_login(app, auth_manager):
    response = TestClient(app).get("/frames?run_id=1&trial_id=1", follow_redirects=False)
    assert response.status_code == 303 and "login" in response.headers["location"]


def test_simulated_frame_is_the_calibrated_frame_with_the_runs_spots(viewer, frames_beamtime):
    results = frames_beamtime["results"]
    integrated = next(r for r in results if r.status == "integrated")
    header, raster = frame(
        viewer, frames_beamtime["sim"], frames_beamtime["trial_id"], chunk=0, event=integrated.event
    )
    assert (header["status"], header["indexed"]) == ("integrated", True)
    # the same trial finds the same spots as the job did, where it found them
    assert len(header["spots"]) == integrated.n_spots == len(integrated.spots)
    spots = np.array(header["spots"])
    job = np.stack([integrated.spots.col, integrated.spots.row], axis=1) + 0.5
    assert nearest(job, spots).max() < 0.01
    # predictions: the published integrated.h5's, near the spots they were integrated from
    predicted = np.array(header["predictions"])
    assert len(predicted) == integrated.n_integrated
    assert np.median(nearest(spots, predicted)) < 1.5
    # the raster is the frame calibrated as the job does, quantised to the step
    run_dir = frames_beamtime["exp"] / "runs" / "r0001"
    with open_run(run_dir) as run:
        calib = load_calibration(default_calibration(run_dir), run.geometry.shape)
        plan = plan_calibration(calib, run.geometry)
        photons = calibrate(run.read_frame(0, integrated.event), plan)
    assert raster.shape == photons.shape
    inside = np.isfinite(raster)
    assert 0.95 < inside.mean() < 1  # the gaps between the 16 panels are no pixel
    error = np.abs(raster[inside] - np.clip(photons[inside], 0, None))
    assert error.max() <= header["step"] / 2 + 1e-4
    assert np.isclose(header["beam"][0], 511.3 + 0.5, atol=1e-6)


def test_simulated_spots_are_where_the_truth_put_them(viewer, frames_beamtime, sim_experiment):
    hits = [r for r in frames_beamtime["results"] if r.hit]
    header, _ = frame(
        viewer, frames_beamtime["sim"], frames_beamtime["trial_id"], event=hits[0].event
    )
    with h5py.File(sim_experiment / "truth" / "r0001.h5") as t:
        on = t["spots/event"][()] == hits[0].event
        truth = np.stack([t["spots/col"][()][on], t["spots/row"][()][on]], axis=1) + 0.5
    matched = nearest(np.array(header["spots"]), truth) < 1.5
    assert matched.mean() > 0.9


def test_previous_and_next_hit(viewer, frames_beamtime):
    results = frames_beamtime["results"]
    hits = [r.event for r in results if r.hit]
    assert len(hits) >= 3
    header, _ = frame(viewer, frames_beamtime["sim"], frames_beamtime["trial_id"], event=hits[1])
    assert header["previous_hit"] == [0, hits[0]] and header["next_hit"] == [0, hits[2]]
    # without an event the viewer opens at the first hit, with no previous one
    header, _ = frame(viewer, frames_beamtime["sim"], frames_beamtime["trial_id"])
    assert (header["event"], header["previous_hit"]) == (hits[0], None)
    page = viewer.get(
        "/frames",
        params={
            "run_id": frames_beamtime["sim"],
            "trial_id": frames_beamtime["trial_id"],
            "event": hits[1],
        },
    )
    assert page.status_code == 200
    assert f"event={hits[2]}" in page.text and f"event={hits[0]}" in page.text


@pytest.mark.parametrize(
    ("which", "where", "code", "says"),
    [
        ("evil", {}, 404, "is not a run name"),
        ("missing", {}, 503, "no SF API connection"),  # not on the beamline side: ask the center
        ("sim", {"chunk": 0, "event": 99999}, 404, "no event 99999 in chunk 0"),
    ],
)
def test_what_cannot_be_shown_is_named(viewer, frames_beamtime, which, where, code, says):
    params = {"run_id": frames_beamtime[which], "trial_id": frames_beamtime["trial_id"], **where}
    for path in ("/frames", "/frames/data"):
        response = viewer.get(path, params=params)
        assert response.status_code == code and says in response.json()["detail"]
        assert response.headers["content-type"] == "application/json"  # no markup from names


def test_only_the_active_beamtimes_experiment(viewer, frames_beamtime, monkeypatch):
    monkeypatch.setenv(VARIABLE_ENV, json.dumps({"experiment": "other", "exp_dir": "/nowhere"}))
    response = viewer.get(
        "/frames/data",
        params={"run_id": frames_beamtime["sim"], "trial_id": frames_beamtime["trial_id"]},
    )
    assert response.status_code == 404 and "not the active beamtime's" in response.json()["detail"]


def test_simulated_powder_sums_the_spots_of_the_hits(viewer, frames_beamtime):
    response = viewer.get(
        "/api/powder",
        params={"run_id": frames_beamtime["sim"], "trial_id": frames_beamtime["trial_id"]},
    )
    assert response.status_code == 200, response.text
    powder = response.json()
    hits = [r for r in frames_beamtime["results"] if r.hit]
    assert powder["hits"] == powder["frames_used"] == len(hits)
    assert powder["spots"] == sum(r.n_spots for r in hits)
    assert sum(map(sum, powder["plane"])) == powder["spots"] == sum(powder["radial"]["counts"])
    # 2θ and d agree with Bragg's law at the run's wavelength
    radial = powder["radial"]
    tt, d = np.radians(radial["two_theta_deg"][10]), radial["d_angstrom"][10]
    assert np.isclose(2 * d * np.sin(tt / 2), radial["wavelength_angstrom"], rtol=1e-3)


cspad = pytest.mark.skipif(not CSPAD.is_dir(), reason=f"real CSPAD frames absent: {CSPAD}")


@cspad
def test_cspad_frame_is_laid_out_with_its_64_asics(viewer, frames_beamtime):
    header, raster = frame(
        viewer, frames_beamtime["cspad"], frames_beamtime["cspad_trial_id"], event=0
    )
    assert header["panels"] == 64
    reader = CbfReader([str(CSPAD / CSPAD_FRAMES[0])])
    blocks = reader.frame(0).astype(float)
    rng = np.random.default_rng(3)
    panel = rng.integers(0, 64, 400)
    fs, ss = rng.integers(1, 193, 400), rng.integers(1, 184, 400)
    lab = lab_positions(reader.detector, panel, fs + 0.5, ss + 0.5)
    x0, y0 = lab_origin(header)
    u, v = (lab[:, 0] - x0) / header["pixel_mm"], (lab[:, 1] - y0) / header["pixel_mm"]
    shown = raster[v.astype(int), u.astype(int)]
    expected = np.clip(blocks[panel, ss, fs], 0, None)
    assert np.mean(np.abs(shown - expected) <= header["step"]) > 0.97


def lab_origin(header: dict) -> tuple[float, float]:
    """Lab x, y (mm) of the raster's corner, from where the header puts the beam (0, 0)."""
    u, v = header["beam"]
    return -u * header["pixel_mm"], -v * header["pixel_mm"]


@cspad
def test_cspad_spots_match_dials_spot_finder(viewer, frames_beamtime):
    header, _ = frame(viewer, frames_beamtime["cspad"], frames_beamtime["cspad_trial_id"], event=0)
    dials = json.loads((CSPAD / "dials_strong_spots.json").read_text())["spots"]
    ours = np.array(header["spots"])
    reader = CbfReader([str(CSPAD / CSPAD_FRAMES[0])])
    theirs = np.array([[s["panel"], s["fs"], s["ss"]] for s in dials if s["frame"] == 0])
    p = theirs[:, 0].astype(int)
    lab = reader.detector.lab_position(p, theirs[:, 1], theirs[:, 2])
    x0, y0 = lab_origin(header)
    theirs_uv = np.stack([(lab[:, 0] - x0), (lab[:, 1] - y0)], axis=1) / header["pixel_mm"]
    # the trial's spot finder on the laid-out panels finds DIALS's spots, at DIALS's places
    found = nearest(theirs_uv, ours) < 2.0
    matched = nearest(ours, theirs_uv) < 2.0
    assert found.mean() > 0.35 and matched.mean() > 0.55, (found.mean(), matched.mean())
    # ... which a layout off by a few pixels would not
    assert (nearest(ours + [6.0, 0.0], theirs_uv) < 2.0).mean() < 0.1


@cspad
def test_cspad_powder_resolution_is_dials(viewer, frames_beamtime):
    """2θ and d of the powder profile on the real metrology: DIALS's calculated reflection
    positions of the indexed still land at DIALS's own resolutions."""
    response = viewer.get(
        "/api/powder",
        params={"run_id": frames_beamtime["cspad"], "trial_id": frames_beamtime["cspad_trial_id"]},
    )
    assert response.status_code == 200, response.text
    powder = response.json()
    assert powder["frames_used"] == 2 and powder["spots"] > 300
    ref = json.loads((CSPAD / "dials_reference.json").read_text())["results"][0]
    columns = ref["reflection_columns"]
    table = np.array(ref["reflections"], dtype=float)
    col = {name: table[:, columns.index(name)] for name in ("panel", "fs_cal", "ss_cal", "d_A")}
    detector = CbfReader([str(CSPAD / CSPAD_FRAMES[0])]).detector
    lab = detector.lab_position(col["panel"].astype(int), col["fs_cal"], col["ss_cal"])
    d = bragg_d(two_theta_deg(lab), ref["wavelength_A"])
    assert np.median(np.abs(d / col["d_A"] - 1)) < 1e-3
    # the profile's wavelength is the stills' (9.74-9.76 keV)
    assert abs(powder["radial"]["wavelength_angstrom"] - ref["wavelength_A"]) < 0.005


@cspad
@pytest.mark.parametrize("path", ["/frames", "/powder"])
def test_hostile_trial_name_is_escaped(viewer, frames_beamtime, path):
    params = {"run_id": frames_beamtime["cspad"], "trial_id": frames_beamtime["cspad_trial_id"]}
    page = viewer.get(path, params=params)
    assert page.status_code == 200, page.text
    assert CSPAD_TRIAL not in page.text and html.escape(CSPAD_TRIAL) in page.text
    assert not any(tag == "img" for tag, _ in Elements(page.text).tags)


@pytest.mark.parametrize("name", ["r0001\n", "r0001/../r0002", "../runs/r0001", "r01", "/etc"])
def test_run_folder_takes_only_run_names(tmp_path, name):
    (tmp_path / "runs" / "r0001").mkdir(parents=True)
    assert run_folder(tmp_path, "r0001") == tmp_path / "runs" / "r0001"
    with pytest.raises(FrameNotFound, match="is not a run name"):
        run_folder(tmp_path, name)
