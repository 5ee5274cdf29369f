"""A setup run's results in the dashboard (``/setup``): the cell with its spread, lattice and
space groups, the minority cell, the groups ranked by absences and their choice, both plots, rms
before/after per panel; what is missing or refused is named; hostile values stay text. Real outputs of the kernels' writers, a real SQLite
results DB and Airflow's real auth manager."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from kernels.resultsdb import ResultsDB
from plugins.sfx_dashboard_app import create_app

from .conftest import EVIL
from .setup_fixtures import SPACE_GROUP, register_setup

EXPERIMENT = "cxisetup"
VARIABLE_ENV = "AIRFLOW_VAR_SFXFLOW_BEAMTIME"


class Elements(HTMLParser):
    """The text inside and the attributes of each element with an id, as a browser reads them."""

    VOID = {"img", "input", "br", "meta", "hr"}

    def __init__(self, text: str):
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.texts: dict[str, str] = {}
        self.attrs: dict[str, dict] = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "id" in found:
            self.attrs[found["id"]] = found
            self.texts.setdefault(found["id"], "")
        if tag not in self.VOID:
            self.open.append((tag, found.get("id")))

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for _, element in self.open:
            if element:
                self.texts[element] += data

    def text_of(self, element: str) -> str:
        return self.texts[element]

    def attribute(self, element: str, name: str) -> str:
        return self.attrs[element][name]


@pytest.fixture(scope="module")
def setup_beamtime(tmp_path_factory, setup_outputs) -> dict:
    exp = tmp_path_factory.mktemp("setup") / "experiment"
    url = f"sqlite:///{exp.parent / 'results.db'}"
    with ResultsDB(url) as db:
        db.ensure_run(EXPERIMENT, "r0001")
        unfinished = db.ensure_trial("setup2", {"spotfinder": {"snr": 5.0}})
    (exp / "setup" / "setup2").mkdir(parents=True)  # started, nothing downloaded yet
    return {
        "exp": exp,
        "url": url,
        "unfinished": unfinished,
        **register_setup(url, exp, "setup1", setup_outputs),
    }


@pytest.fixture
def client(setup_beamtime, token, monkeypatch) -> TestClient:
    variable = {"experiment": EXPERIMENT, "exp_dir": str(setup_beamtime["exp"])}
    monkeypatch.setenv(VARIABLE_ENV, json.dumps(variable))
    client = TestClient(create_app(setup_beamtime["url"]), base_url="http://127.0.0.1")
    client.cookies.set("_token", token)
    return client


def test_the_setup_page_shows_cell_space_groups_and_residuals(client, setup_beamtime):
    trial_id = setup_beamtime["trial_id"]
    page = client.get("/setup", params={"experiment": EXPERIMENT, "trial_id": trial_id})
    assert page.status_code == 200, page.text
    shown = Elements(page.text)
    main = setup_beamtime["cell"]["main"]
    assert main["bravais"] == "tP" and SPACE_GROUP in main["space_groups"]
    assert "tP (tetragonal), 60 of 75 images" in shown.text_of("setup-lattice")
    cell_text = shown.text_of("setup-cell")
    assert f"{main['cell'][0]:.5g}" in cell_text and f"{main['spread'][0]:.2g}" in cell_text
    assert f"{SPACE_GROUP} (the trial's)" in shown.text_of("setup-space-groups")
    assert "oP" in page.text  # the minority cell is shown, not dropped
    ranking = shown.text_of("setup-absences")
    assert all(r["space_group"] in ranking for r in setup_beamtime["absences"]["ranking"])
    choice = shown.text_of("setup-absence-choice")
    assert "chosen: P 41 21 2" in choice and "same absences as P 43 21 2" in choice
    geometry = setup_beamtime["geometry"]
    assert f"{geometry['rms_before_px']:.3g} px before" in shown.text_of("setup-rms")
    assert f"{geometry['rms_after_px']:.3g} px after" in shown.text_of("setup-rms")
    panels = shown.text_of("setup-panels")
    assert EVIL in panels and "<script>" not in page.text  # escaped, shown as text
    assert panels.count("m") >= len(geometry["panels_after"]) - 1
    for image in ("setup-histograms", "setup-residuals"):
        png = client.get("/" + shown.attribute(image, "src"))
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    listed = client.get("/setup", params={"experiment": EXPERIMENT})
    assert listed.status_code == 200 and "setup1 v1" in listed.text
    assert "setup2" not in listed.text  # nothing downloaded yet: not listed


def test_missing_results_and_odd_requests_are_named(client, setup_beamtime):
    ids = {"experiment": EXPERIMENT}
    unfinished = client.get("/setup", params={**ids, "trial_id": setup_beamtime["unfinished"]})
    assert unfinished.status_code == 404 and "no cell.json in" in unfinished.json()["detail"]
    other = client.get("/setup", params={"experiment": "other", "trial_id": 1})
    assert other.status_code == 404 and "not the active beamtime" in other.json()["detail"]
    odd = client.get(
        "/setup/file", params={**ids, "trial_id": setup_beamtime["trial_id"], "name": "../x"}
    )
    assert odd.status_code == 404 and "one of cell_histograms.png" in odd.json()["detail"]
    assert client.get("/setup", params={**ids, "trial_id": 999}).status_code == 404


def test_anonymous_goes_to_login(setup_beamtime, auth_manager):
    anonymous = TestClient(create_app(setup_beamtime["url"]), base_url="http://127.0.0.1")
    page = anonymous.get("/setup", params={"experiment": EXPERIMENT}, follow_redirects=False)
    assert page.status_code == 303
