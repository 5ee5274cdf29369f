"""The dashboard app against a real SQLite results DB and Airflow's real auth manager."""

from __future__ import annotations

import json
import sqlite3
from html.parser import HTMLParser

import pymysql
import pytest
from fastapi.testclient import TestClient

from kernels.resultsdb import ResultsDB
from plugins.sfx_dashboard_app import create_app

from .conftest import EVIL, EVIL_DATASET, EVIL_TAG, EVIL_TRIAL, EXPERIMENT, add_images


@pytest.fixture
def client(beamtime) -> TestClient:
    return TestClient(create_app(beamtime["url"]), base_url="http://127.0.0.1")


@pytest.fixture
def viewer(client, token) -> TestClient:
    """A client logged in like the UI: the JWT in Airflow's ``_token`` cookie."""
    client.cookies.set("_token", token)
    return client


def page_params(beamtime) -> dict:
    return {"experiment": EXPERIMENT, "trial_id": beamtime["trial_id"]}


class Elements(HTMLParser):
    """Tags and attributes of a page as the browser would parse them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs?experiment=x&trial_id=1",
        "/api/runs/1/weather?trial_id=1",
        "/shells.js",
        "/weather.js",
        "/dashboard.js",
        "/vendor/plotly.js",
    ],
)
def test_anonymous_data_requests_get_401(client, auth_manager, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "Not authenticated" in response.text


def test_anonymous_page_redirects_to_airflow_login(client, auth_manager, beamtime):
    response = client.get("/", params=page_params(beamtime), follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/auth/login")
    assert "next=" in location and "trial_id" in location


def test_forged_and_expired_tokens_are_refused(client, auth_manager, token, beamtime):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    expired = auth_manager.generate_jwt(
        SimpleAuthManagerUser(username="viewer", role="viewer"), expiration_time_in_seconds=-60
    )
    for bad in (forged, expired):
        api = client.get(
            "/api/runs", params=page_params(beamtime), headers={"Authorization": f"Bearer {bad}"}
        )
        assert api.status_code in (401, 403)
        client.cookies.set("_token", bad)
        page = client.get("/", params=page_params(beamtime), follow_redirects=False)
        assert page.status_code == 303
        client.cookies.clear()


def test_bearer_token_works_for_the_api(client, token, beamtime):
    response = client.get(
        "/api/runs", params=page_params(beamtime), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    # in run order (length, then name), no longer by name: the odd name sorts last
    assert [row["run"] for row in response.json()["runs"]] == ["r0001", "r0003", EVIL]


# -- content ----------------------------------------------------------------------------------


def test_runs_table_shows_state_counts_and_turnaround(viewer, beamtime):
    rows = {
        row["run"]: row
        for row in viewer.get("/api/runs", params=page_params(beamtime)).json()["runs"]
    }
    assert rows["r0001"] | {"run_id": 0, "created": 0.0} == {
        "run_id": 0,
        "created": 0.0,
        "concluded": 1000.0,
        "run": "r0001",
        "state": "COMPLETED",
        "images": 40,
        "hits": 20,
        "indexed": 10,
        "integrated": 10,
        "turnaround_s": 90.0,
    }
    assert (rows[EVIL]["state"], rows[EVIL]["images"], rows[EVIL]["hits"]) == ("RUNNING", 12, 6)
    assert (rows["r0003"]["state"], rows["r0003"]["images"]) == ("new", 0)

    page = viewer.get("/", params=page_params(beamtime))
    assert page.status_code == 200
    done_row = page.text.split(f'data-run-id="{beamtime["done"]}"')[1].split("</tr>")[0]
    for cell in (
        'data-field="state">COMPLETED<',
        'data-field="images">40<',
        'data-field="hits">20<',
        'data-field="indexed">10<',
        'data-field="turnaround_s">90 s<',
        '<progress data-field="indexed" value="10" max="40"',
    ):
        assert cell in done_row


def test_live_progress_follows_the_images_logged(viewer, beamtime):
    from kernels.resultsdb import ResultsDB

    def running_images():
        rows = viewer.get("/api/runs", params=page_params(beamtime)).json()["runs"]
        return next(row["images"] for row in rows if row["run_id"] == beamtime["running"])

    assert running_images() == 12
    with ResultsDB(beamtime["url"]) as db:
        add_images(db, beamtime["running"], beamtime["trial_id"], 8, start=12, t0=1150.0)
    assert running_images() == 20
    progress = viewer.get(
        f"/api/runs/{beamtime['running']}/progress", params={"trial_id": beamtime["trial_id"]}
    )
    assert progress.json()["by_status"] == {"blank": 10, "hit": 5, "indexed": 5}


def test_a_new_merge_changes_the_version_the_page_watches(viewer, beamtime):
    from kernels.resultsdb import ResultsDB

    def merged_at() -> float:
        return viewer.get("/api/runs", params=page_params(beamtime)).json()["merged_at"]

    before = merged_at()
    assert before > 0
    assert (
        f'<div id="datasets" data-merged-at="{before!r}" data-source="api/datasets?'
        in viewer.get("/", params=page_params(beamtime)).text
    )
    with ResultsDB(beamtime["url"]) as db:
        db.record_merge_stats(
            beamtime["trial_id"], {"completeness": 0.955}, [], run_id=beamtime["done"]
        )
    assert merged_at() > before


def test_merged_statistics_per_dataset(viewer, beamtime):
    page = viewer.get("/", params=page_params(beamtime)).text
    overall = page.split('<table class="overall">')[1].split("</table>")[0]
    assert "<td>0.913</td>" in overall and "<td>0.97</td>" in overall and "<td>7.25</td>" in overall
    shells = page.split('<table class="shells">')[1].split("</table>")[0]
    assert shells.count("<tr>") == 4 and "<td>–</td>" in shells  # NaN CC½ of the last shell
    data = viewer.get("/api/datasets", params=page_params(beamtime)).json()["datasets"]
    assert [(d["name"], d["tags"]) for d in data] == [(EVIL_DATASET, [EVIL_TAG])]
    assert data[0]["stats"]["shells"][2]["cc_half"] is None


def test_run_page_funnel_jobs_and_weather(viewer, beamtime):
    page = viewer.get("/run", params={"run_id": beamtime["done"], "trial_id": beamtime["trial_id"]})
    assert page.status_code == 200
    funnel = page.text.split('<table id="funnel"')[1].split("</table>")[0]
    assert all(
        f'data-field="{k}">{n}<' in funnel
        for k, n in (("images", 40), ("hits", 20), ("indexed", 10))
    )
    assert "perlmutter" in page.text and "COMPLETED" in page.text
    assert f'data-weather="api/runs/{beamtime["done"]}/weather?trial_id=' in page.text


def test_weather_json_is_bars_per_rank_covering_the_run(viewer, beamtime):
    weather = viewer.get(
        f"/api/runs/{beamtime['done']}/weather", params={"trial_id": beamtime["trial_id"]}
    ).json()
    assert weather["ranks"] and weather["stages"] and weather["bin_s"] > 0
    lanes, stages = {bar[0] for bar in weather["bars"]}, {bar[1] for bar in weather["bars"]}
    assert lanes == set(range(len(weather["ranks"])))  # every rank that worked has bars
    assert stages <= set(range(len(weather["stages"])))
    assert all(1 <= level <= weather["levels"] for _, _, level, _, _ in weather["bars"])
    assert all(0 <= first < after <= 300 for *_, first, after in weather["bars"])


def test_missing_things_are_404_with_their_name(viewer, beamtime):
    no_images = viewer.get(
        f"/api/runs/{beamtime['new']}/weather", params={"trial_id": beamtime["trial_id"]}
    )
    assert no_images.status_code == 404 and f"run id {beamtime['new']}" in no_images.text
    assert (
        "no trial with id 999"
        in viewer.get("/", params={"experiment": EXPERIMENT, "trial_id": 999}).text
    )
    assert "no experiment 'nope'" in viewer.get("/", params={"experiment": "nope"}).text
    assert "no run with id 999" in viewer.get("/run", params={"run_id": 999, "trial_id": 1}).text


def test_unreadable_results_db_is_a_503_naming_it(tmp_path, token):
    for url in (
        f"sqlite:///{tmp_path / 'no-such-dir' / 'results.db'}",
        f"sqlite:///{tmp_path / 'empty.db'}",
    ):
        client = TestClient(create_app(url), base_url="http://127.0.0.1")
        client.cookies.set("_token", token)
        response = client.get("/")
        assert response.status_code == 503
        assert f"results DB {url} not readable" in response.json()["detail"]
    assert not (tmp_path / "empty.db").exists()  # a mistyped URL never leaves a new empty DB behind


def test_the_dashboard_cannot_write(beamtime):
    with ResultsDB(beamtime["url"], retry_for=1.0, read_only=True) as db:
        assert db.experiments()  # reads work
        with pytest.raises(
            (sqlite3.OperationalError, pymysql.err.OperationalError, pymysql.err.InternalError),
            match="(?i)read.?only",
        ):
            db.ensure_run("cxi2", "r0001")


# -- escaping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["overview", "run"])
def test_names_with_html_are_shown_as_text_never_as_markup(viewer, beamtime, which):
    params = (
        page_params(beamtime)
        if which == "overview"
        else {"run_id": beamtime["running"], "trial_id": beamtime["trial_id"]}
    )
    response = viewer.get("/" if which == "overview" else "/run", params=params)
    assert response.status_code == 200
    text = response.text
    for raw in (EVIL, EVIL_TAG, EVIL_DATASET, EVIL_TRIAL):
        assert raw not in text, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    if which == "overview":
        assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in text
    elements = Elements(text)
    scripts = [attrs for tag, attrs in elements.tags if tag == "script"]
    own = {"dashboard.js", "vendor/plotly.js", "plots.js", "run_view.js", "weather.js", "shells.js"}
    assert all(list(attrs) == ["src"] and attrs["src"] in own for attrs in scripts)
    assert not [tag for tag, _ in elements.tags if tag in ("svg", "b")]
    assert not [tag for tag, _ in elements.tags if tag == "img"]  # plots are drawn by the scripts
    assert not any(key.startswith("on") for _, attrs in elements.tags for key in attrs)
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_runs_are_listed_in_run_order_past_r9999(viewer, beamtime):
    with ResultsDB(beamtime["url"]) as db:
        for name in ("r10000", "r9999"):
            db.ensure_run(EXPERIMENT, name, concluded=1300.0)
    runs = [
        row["run"] for row in viewer.get("/api/runs", params=page_params(beamtime)).json()["runs"]
    ]
    assert runs == ["r0001", "r0003", "r9999", "r10000", EVIL]


# -- pipeline states, failures, settings --------------------------------------------------------

LOG_URL = "http://127.0.0.1:8080/dags/sfx_run/runs/r0001__t/tasks/process?try_number=1"


def test_each_run_says_its_pipeline_state_and_a_failure_its_reason_and_log(viewer, beamtime):
    trial = beamtime["trial_id"]
    with ResultsDB(beamtime["url"]) as db:
        db.record_pipeline_state(beamtime["running"], trial, "processing", total=40)
        db.record_pipeline_state(beamtime["done"], trial, "published")
    data = viewer.get("/api/runs", params=page_params(beamtime)).json()
    rows = {r["run"]: data["pipelines"][str(r["run_id"])] for r in data["runs"]}
    assert rows[EVIL]["pipeline"] == "processing 12/40"
    assert rows["r0001"]["pipeline"] == "published"
    assert rows["r0003"]["pipeline"] == "not processed with this trial"
    assert rows["r0003"]["touched"] is False

    reason = "process: job 102 on perlmutter ended FAILED (exit 1:0)"
    with ResultsDB(beamtime["url"]) as db:
        db.record_pipeline_state(beamtime["running"], trial, "failed", reason, LOG_URL)
    page = viewer.get("/", params=page_params(beamtime)).text
    failed_row = page.split(f'data-run-id="{beamtime["running"]}"')[1].split("</tr>")[0]
    assert f'data-field="pipeline">failed: {reason}<' in failed_row
    assert f'href="{LOG_URL.replace("&", "&amp;")}" target="_top">task log<' in failed_row
    untouched = page.split(f'data-run-id="{beamtime["new"]}"')[1].split("</tr>")[0]
    assert 'data-field="images">–<' in untouched and 'data-field="hits">–<' in untouched
    run_page = viewer.get("/run", params={"run_id": beamtime["running"], "trial_id": trial})
    assert f"pipeline: failed: {reason}" in run_page.text and "task log" in run_page.text


def test_a_log_link_is_only_ever_an_http_link(viewer, beamtime):
    with ResultsDB(beamtime["url"]) as db:
        db.record_pipeline_state(
            beamtime["done"], beamtime["trial_id"], "failed", "x", "javascript:alert(4)"
        )
    page = viewer.get("/", params=page_params(beamtime)).text
    assert 'href="javascript' not in page


def test_settings_page_shows_the_beamtime_and_every_trials_parameters(
    viewer, beamtime, monkeypatch
):
    settings = {"experiment": "cxi42", "results_db": "mysql://sfx:hunter2@db.example/results"}
    monkeypatch.setenv("AIRFLOW_VAR_SFXFLOW_BEAMTIME", json.dumps(settings))
    page = viewer.get("/settings")
    assert page.status_code == 200
    assert (
        "cxi42" in page.text and "hunter2" not in page.text and "contains a password" in page.text
    )
    assert "spot_threshold" in page.text  # the trial's own parameters (fill_beamtime)
    keys = page.text.split("<h2>Trial parameters</h2>")[1]
    assert "spotfinder" in keys and ">snr<" in keys and "edge of a spot&#x27;s box" in keys
    monkeypatch.setenv("AIRFLOW_VAR_SFXFLOW_BEAMTIME", json.dumps({"experimnt": "x"}))
    assert "unknown setting(s) [&#x27;experimnt&#x27;]" in viewer.get("/settings").text


def test_the_charting_library_is_served_from_the_plugin_and_may_be_cached(viewer, beamtime):
    response = viewer.get("/vendor/plotly.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "plotly.js (cartesian - minified) v4.1.1" in response.text[:200]
    assert response.headers["cache-control"] == "private, max-age=86400"
    # pages keep the strict defaults
    page = viewer.get("/", params=page_params(beamtime))
    assert page.headers["cache-control"] == "no-store"
