"""The frame viewer and the virtual powder in Debian's chromium inside a real Airflow api-server:
the simulated run (spots, predictions, next hit, zoom, contrast), the real CSPAD stills with
their 64 ASICs, a 4.2 Mpix Jungfrau frame (time to drawn), hostile names, anonymous refused.
Screenshots go to ``test-artifacts/frames-*.png`` and ``powder-*.png``."""

from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import expect

from .frames_fixtures import CSPAD, CSPAD_TRIAL, JF16M
from .test_browser import ARTIFACTS, browser  # noqa: F401  (the chromium fixture)

DRAWN = "canvas#frame[data-drawn='1']"
DIALOGS: list[str] = []  # an alert() would mean a name ran as script


@pytest.fixture(scope="module")
def airflow(dashboard_server):
    """The browser tests' api-server; its Variable names the frames' experiment folder."""
    return dashboard_server


@pytest.fixture(scope="module")
def page(airflow, browser):  # noqa: F811
    """A logged-in page; fails the test module if any script dialog (an escaped name ran)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 1150})
    page.on("dialog", lambda dialog: (DIALOGS.append(dialog.message), dialog.dismiss()))
    page.goto(f"{airflow.base_url}/")
    page.fill("input[name=username]", airflow.username)
    page.fill("input[name=password]", airflow.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    yield page
    page.close()


def url(airflow, path: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{airflow.base_url}/sfxflow/{path}?{query}"


def canvas_lit(page) -> float:
    """Fraction of the drawn canvas that is not black (0 = nothing drawn)."""
    return page.evaluate(
        """() => { const c = document.getElementById('frame');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 0) lit++;
        return lit / (d.length / 4); }"""
    )


def test_anonymous_viewer_goes_to_login(airflow, browser, frames_beamtime):  # noqa: F811
    anonymous = browser.new_page()
    anonymous.goto(url(airflow, "frames", run_id=frames_beamtime["sim"], trial_id=1))
    assert "/auth/login" in anonymous.url
    response = anonymous.request.get(url(airflow, "frames/data", run_id=1, trial_id=1))
    assert response.status == 401
    anonymous.close()


def test_simulated_run_from_its_run_page(airflow, page, frames_beamtime):
    sim, trial_id = frames_beamtime["sim"], frames_beamtime["trial_id"]
    results = frames_beamtime["results"]
    hits = [r for r in results if r.hit]
    page.goto(url(airflow, "run", run_id=sim, trial_id=trial_id))
    page.click("a#frames-link")
    page.wait_for_selector(DRAWN)
    canvas = page.locator("canvas#frame")
    expect(canvas).to_have_attribute("data-spots", str(hits[0].n_spots))
    assert canvas_lit(page) > 0.3
    page.screenshot(path=ARTIFACTS / "frames-simulated.png", full_page=True)

    integrated = next(r for r in results if r.status == "integrated")
    page.goto(url(airflow, "frames", run_id=sim, trial_id=trial_id, event=integrated.event))
    page.wait_for_selector(DRAWN)
    expect(page.locator("#status")).to_have_text("integrated")
    expect(canvas).to_have_attribute("data-predictions", str(integrated.n_integrated))
    page.click("#zoom-in")
    page.click("#zoom-in")
    page.locator("#vmax").fill("100")  # more contrast: redrawn in the page, no new request
    expect(page.locator("#vmax-value")).not_to_have_text("")
    page.screenshot(path=ARTIFACTS / "frames-simulated-zoomed.png", full_page=True)

    after = [r.event for r in hits if r.event > integrated.event]
    if after:  # the next hit, by the link and by the key
        page.keyboard.press("n")
        page.wait_for_url(lambda u: f"event={after[0]}" in u)
        page.wait_for_selector(DRAWN)


@pytest.mark.skipif(not CSPAD.is_dir(), reason=f"real CSPAD frames absent: {CSPAD}")
def test_cspad_stills_with_their_asics_and_powder(airflow, page, frames_beamtime):
    params = {"run_id": frames_beamtime["cspad"], "trial_id": frames_beamtime["cspad_trial_id"]}
    page.goto(url(airflow, "frames", **params, event=0))
    page.wait_for_selector(DRAWN)
    expect(page.locator("h1")).to_contain_text(CSPAD_TRIAL)  # the hostile name as text
    expect(page.locator("#frame-info")).to_contain_text("64 panels")
    assert int(page.locator("canvas#frame").get_attribute("data-spots")) > 300
    page.screenshot(path=ARTIFACTS / "frames-cspad.png", full_page=True)

    page.goto(url(airflow, "powder", **params))
    page.wait_for_selector("#powder-info[data-drawn='1']")
    # every non-empty bin of the 2-D sum drawn, and the radial profile's line
    powder = page.request.get(url(airflow, "api/powder", **params)).json()
    bins = sum(1 for row in powder["plane"] for count in row if count)
    expect(page.locator("#powder-plane .scatterlayer .point")).to_have_count(bins)
    expect(page.locator("#powder-radial .scatterlayer path.js-line")).to_have_count(1)
    expect(page.locator("#powder-info")).to_contain_text("of 2 hits")
    page.screenshot(path=ARTIFACTS / "powder-cspad.png", full_page=True)


@pytest.mark.skipif(not JF16M.is_file(), reason=f"real Jungfrau 16M geometry absent: {JF16M}")
def test_jungfrau_4m_frame_time_to_drawn(airflow, page, frames_beamtime):
    params = {"run_id": frames_beamtime["jungfrau"], "trial_id": frames_beamtime["trial_id"]}
    page.goto(url(airflow, "frames", **params, event=1))
    page.wait_for_selector(DRAWN, timeout=30_000)
    canvas = page.locator("canvas#frame")
    expect(page.locator("#frame-info")).to_contain_text("8 panels")
    assert int(canvas.get_attribute("data-spots")) > 200
    timing = {
        # from the click (navigation start) to the frame drawn with its spots
        "navigation_to_drawn_ms": float(canvas.get_attribute("data-shown-at")),
        "fetch_decode_draw_ms": float(canvas.get_attribute("data-ms")),
        "raster_width": int(canvas.get_attribute("data-width")),
    }
    page.goto(url(airflow, "frames", **params, event=1))  # again: the run is open in the server
    page.wait_for_selector(DRAWN, timeout=30_000)
    timing["again_navigation_to_drawn_ms"] = float(canvas.get_attribute("data-shown-at"))
    timing["load_average"] = os.getloadavg()[0]
    (ARTIFACTS / "frames-jungfrau4m-timing.json").write_text(json.dumps(timing))
    print(f"Jungfrau 4.2 Mpix frame in chromium: {timing}")
    page.screenshot(path=ARTIFACTS / "frames-jungfrau4m.png", full_page=True)


def test_hostile_run_name_is_refused_as_text(airflow, page, frames_beamtime):
    page.goto(url(airflow, "frames", run_id=frames_beamtime["evil"], trial_id=1))
    expect(page.locator("body")).to_contain_text("is not a run name")
    assert DIALOGS == []
