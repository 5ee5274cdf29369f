"""Run view, dataset progress and timeline (issue 19) against real results DBs and real logins."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kernels.resultsdb import ResultsDB
from plugins.sfx_dashboard_app import create_app

from .conftest import EVIL, EVIL_DATASET, EVIL_TAG, EXPERIMENT, add_images


@pytest.fixture
def viewer(beamtime, token) -> TestClient:
    client = TestClient(create_app(beamtime["url"]), base_url="http://127.0.0.1")
    client.cookies.set("_token", token)
    return client


def shells(d_edges, cc, completeness, multiplicity, i_over_sigma):
    return [
        {"d_min": lo, "d_max": hi, "cc_half": cc, "completeness": completeness,
         "multiplicity": multiplicity, "mean_i_over_sigma": i_over_sigma}
        for hi, lo in zip(d_edges, d_edges[1:])
    ]  # fmt: skip


def merge_runs(beamtime) -> None:
    """Per-run merges of both tagged runs (with the images merged) and a suspect flag."""
    with ResultsDB(beamtime["url"]) as db:
        for run_id, images, cc in ((beamtime["done"], 100, 0.2), (beamtime["running"], 300, 0.4)):
            overall = {"images": images, "cc_half": cc, "cc_star": 0.8, "cc_ano": 0.1,
                       "error_model": {"a": 1.1, "b": 0.02}, "suspect": {"reason": "CC1/2 low"}}  # fmt: skip
            db.record_merge_stats(
                beamtime["trial_id"], overall, shells([10.0, 3.0, 2.0], cc, 0.5, 2.0, 3.0),
                run_id=run_id,
            )  # fmt: skip


def test_anonymous_view_data_gets_401_and_pages_redirect_to_login(beamtime, auth_manager):
    client = TestClient(create_app(beamtime["url"]), base_url="http://127.0.0.1")
    for path in ("/api/runs/1/view?trial_id=1", "/api/timeline?experiment=x&trial_id=1",
                 "/api/datasets/1/progress?experiment=x&trial_id=1", "/run_view.js", "/plots.js"):  # fmt: skip
        assert client.get(path).status_code == 401, path
    for path in (
        "/timeline?experiment=x&trial_id=1",
        "/progress?experiment=x&trial_id=1&dataset_id=1",
    ):
        assert client.get(path, follow_redirects=False).status_code == 303, path


def test_run_view_has_rates_frames_cells_reasons_state_and_merge(viewer, beamtime):
    merge_runs(beamtime)
    params = {"trial_id": beamtime["trial_id"]}
    view = viewer.get(f"/api/runs/{beamtime['done']}/view", params=params).json()
    assert view["images"] == 40 and view["state"]["state"] == "merged"
    rates = view["rates"]
    assert rates["x_label"] == "acquisition time (s)" and rates["window"] == 10
    # every 2nd image a hit, every 4th indexed: the rolling rates are exactly 1/2 and ~1/4
    assert rates["hit_rate"] == pytest.approx([0.5] * len(rates["x"]))
    assert all(0.2 <= r <= 0.3 for r in rates["indexing_rate"])
    assert rates["x"][0] == pytest.approx(0.45)  # centre of the first 10 frames at 10 Hz
    frames = view["frames"]
    assert frames["n_spots"][:2] == [30, 2] and frames["event"][:2] == ["0:0", "0:1"]
    assert sum(frames["n_saturated"]) == 4 and len(frames["d_est"]) == 20
    cells = view["cells"]
    assert cells["n"] == 10 and sum(cells["cell_a"]["counts"]) == 10
    assert min(cells["cell_a"]["edges"]) <= 79.0 and max(cells["cell_a"]["edges"]) >= 79.2
    reasons = {r["reason"]: r["images"] for r in view["reasons"]}
    assert reasons == {"miss: # spots < #": 20, "not indexed: no lattice": 10,
                       "indexed: went all the way": 10}  # fmt: skip
    overall = view["merge"]["overall"]
    assert (overall["cc_star"], overall["error_model"]["a"]) == (0.8, 1.1)
    assert overall["suspect"]["reason"] == "CC1/2 low"
    running = viewer.get(f"/api/runs/{beamtime['running']}/view", params=params).json()
    assert running["images"] == 12  # concluded and merged, but processed rows only so far
    new = viewer.get(f"/api/runs/{beamtime['new']}/view", params=params).json()
    assert new["images"] == 0 and new["state"]["state"] == "analysing"
    assert viewer.get("/api/runs/999999/view", params=params).status_code == 404


def test_waiting_run_says_why_and_a_quiet_one_is_stalled(viewer, beamtime):
    trial, params = beamtime["trial_id"], {"trial_id": beamtime["trial_id"]}
    outage = "perlmutter in planned outage until 2026-12-01T18:00Z: <maintenance>"
    with ResultsDB(beamtime["url"]) as db:
        db.record_pipeline_state(beamtime["new"], trial, "waiting", outage)
        db.record_pipeline_state(beamtime["running"], trial, "processing")
    state = viewer.get(f"/api/runs/{beamtime['new']}/view", params=params).json()["state"]
    assert state == {"state": "waiting for the facility", "detail": outage}
    state = viewer.get(f"/api/runs/{beamtime['running']}/view", params=params).json()["state"]
    assert state["state"] == "stalled" and "(processing)" in state["detail"]  # rows from 1970


def test_run_page_loads_the_run_view(viewer, beamtime):
    page = viewer.get("/run", params={"run_id": beamtime["done"], "trial_id": beamtime["trial_id"]})
    assert page.status_code == 200
    for needle in (
        'id="run-view"',
        'src="vendor/plotly.js"',
        'src="run_view.js"',
        'id="plot-cells"',
    ):
        assert needle in page.text
    script = viewer.get("/run_view.js")
    assert (
        script.status_code == 200 and "Plotly.react" in viewer.get("/plots.js").text + script.text
    )


def test_progress_estimates_crystals_for_a_target(viewer, beamtime):
    merge_runs(beamtime)
    params = {"experiment": EXPERIMENT, "trial_id": beamtime["trial_id"]}
    url = f"/api/datasets/{beamtime['dataset_id']}/progress"
    view = viewer.get(url, params={**params, "metric": "cc_half", "target": 0.9, "d": 2.5}).json()
    assert (view["runs"], view["merged_runs"], view["crystals"]) == (2, 2, 400)
    assert [p["crystals"] for p in view["curve"]] == [100, 400]  # accumulated in run order
    assert [p["measured"] for p in view["curve"]] == [0.2, 0.4]
    # CC1/2 = 1/(1 + 2/(m r)) with m = 2: r = 0.25 and 0.667 from the runs, median 0.458
    assert view["model"]["signal_noise"] == pytest.approx((0.25 + 2 / 3) / 2)
    needed = view["crystals_needed"]
    assert needed > 400 and view["more_crystals"] == needed - 400
    assert f"about {needed - 400} more crystals" in view["estimate"]
    assert view["dataset_shell"]["cc_half"] == 0.9  # the stored dataset merge's 2.5-3.0 Å shell
    out_of_reach = viewer.get(url, params={**params, "d": 1.0}).json()
    assert out_of_reach["model"] is None and "measured that resolution" in out_of_reach["estimate"]
    bad = viewer.get(url, params={**params, "metric": "rfree"})
    assert bad.status_code == 422 and "metric must be one of" in bad.text
    page = viewer.get("/progress", params={**params, "dataset_id": beamtime["dataset_id"]})
    assert page.status_code == 200 and 'id="plot-progress"' in page.text
    assert EVIL_DATASET not in page.text and EVIL not in page.text  # names escaped


def test_timeline_lists_runs_with_rates_tags_and_merges(viewer, beamtime):
    merge_runs(beamtime)
    params = {"experiment": EXPERIMENT, "trial_id": beamtime["trial_id"]}
    runs = {r["run"]: r for r in viewer.get("/api/timeline", params=params).json()["runs"]}
    assert runs["r0001"]["hit_rate"] == 0.5 and runs["r0001"]["indexing_rate"] == 0.25
    assert runs["r0001"]["tags"] == [EVIL_TAG] and runs["r0001"]["merged"]
    assert runs["r0003"]["hit_rate"] is None and not runs["r0003"]["merged"]
    assert runs[EVIL]["end"] == 1100.0
    with ResultsDB(beamtime["url"]) as db:
        add_images(db, beamtime["new"], beamtime["trial_id"], 8)
    runs = {r["run"]: r for r in viewer.get("/api/timeline", params=params).json()["runs"]}
    assert runs["r0003"]["images"] == 8  # live: the next poll sees the new run's images
    page = viewer.get("/timeline", params=params)
    assert page.status_code == 200 and EVIL not in page.text and EVIL_TAG not in page.text
    assert viewer.get("/timeline", params={**params, "experiment": "nope"}).status_code == 404
    overview = viewer.get("/", params=params).text
    assert 'href="timeline?' in overview and 'class="progress"' in overview
